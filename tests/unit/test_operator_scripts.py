"""The operator tools end with one message listing the missing settings, never a traceback."""

from __future__ import annotations

import pytest

from recording_pipeline.settings import AZURE_SETTING_NAMES, LOCAL_ONLY_SETTING_NAMES
from scripts import export_participant, replay_poison


@pytest.fixture
def no_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*AZURE_SETTING_NAMES, *LOCAL_ONLY_SETTING_NAMES):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_settings")
@pytest.mark.parametrize(
    ("tool", "main", "argv"),
    [
        ("replay_poison", replay_poison.main, ["--dry-run"]),
        ("export_participant", export_participant.main, ["list", "--participant-id", "8:acs:a"]),
    ],
)
def test_missing_settings_are_listed_in_one_message(
    tool: str, main: object, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert callable(main)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"{tool}: the Function App's settings are missing or invalid:\n")
    for name in ("ACS_ENDPOINT", "ACS_RESOURCE_ID", "ACS_IMMUTABLE_RESOURCE_ID"):
        assert f"  - {name} is required\n" in err
    assert "ARCHIVE_STORAGE_CONNECTION_STRING" in err
    assert "source .local/up.env" in err
    assert "Traceback" not in err
