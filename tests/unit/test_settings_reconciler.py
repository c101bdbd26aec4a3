"""The reconciler's settings: validated with the others, one message listing every problem."""

from __future__ import annotations

import pytest


def test_bad_reconciler_settings_are_listed_with_the_others() -> None:
    from recording_pipeline.settings import Settings, SettingsError

    environ = {
        "ACS_ENDPOINT": "https://acs.communication.azure.com",
        "ACS_RESOURCE_ID": "/subscriptions/s/resourceGroups/g/providers/"
        "Microsoft.Communication/communicationServices/a",
        "ACS_IMMUTABLE_RESOURCE_ID": "immutable",
        "ARCHIVE_ACCOUNT_NAME": "archive",
        "RECONCILE_SCHEDULE": "every 10 minutes",
        "LOST_AFTER_HOURS": "12",
        "MAX_POISON_REPLAYS": "many",
        "DEAD_LETTER_CONTAINER": "Dead_Letters",
    }
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(environ)

    problems = "\n".join(raised.value.problems)
    assert "RECONCILE_SCHEDULE ('every 10 minutes') must be an NCRONTAB expression" in problems
    assert "LOST_AFTER_HOURS ('12') must be between 24 and 72" in problems
    assert "MAX_POISON_REPLAYS ('many') must be a whole number" in problems
    assert "DEAD_LETTER_CONTAINER ('Dead_Letters') must be a valid blob container name" in problems
    good = Settings.from_env(
        {
            **environ,
            **dict.fromkeys(
                (
                    "RECONCILE_SCHEDULE",
                    "LOST_AFTER_HOURS",
                    "MAX_POISON_REPLAYS",
                    "DEAD_LETTER_CONTAINER",
                ),
                "",
            ),
        }
    )
    assert (good.reconcile_schedule, good.lost_after_hours, good.max_poison_replays) == (
        "0 */10 * * * *",
        25,
        5,
    )
