"""Contracts between the Pulumi program and the function code, checked from both sides."""

from __future__ import annotations

import json
import re
from typing import Any

from infra import function_app as infra_function_app
from infra import monitoring
from local_runtime.processes import REPO_ROOT
from recording_pipeline import settings
from recording_pipeline.archive import archiver, quarantine
from recording_pipeline.events_out import announce
from recording_pipeline.reconcile import overdue, report
from recording_pipeline.registry import states
from recording_pipeline.registry import writer as registry_writer


def test_infra_sets_exactly_the_settings_the_function_code_reads_in_azure() -> None:
    assert set(infra_function_app.RUNTIME_SETTING_NAMES) == set(settings.AZURE_SETTING_NAMES)
    assert not set(infra_function_app.RUNTIME_SETTING_NAMES) & set(
        settings.LOCAL_ONLY_SETTING_NAMES
    )
    assert set(settings.LOCAL_ONLY_SETTING_NAMES) <= set(infra_function_app.FORBIDDEN_SETTING_NAMES)


def _written(**options: Any) -> dict[str, Any]:
    """The app settings the program writes for a typical deployment (``options`` added)."""
    return infra_function_app.function_app_settings(
        acs_endpoint="https://acsrec-dev.europe.communication.azure.com",
        acs_resource_id=(
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
            "Microsoft.Communication/communicationServices/acsrec-dev"
        ),
        acs_immutable_resource_id="6a1d0c3e-5f4b-4c8e-9a2d-0e6f7b8c9d10",
        archive_account_name="acsrecarch1234",
        ingress_account_name="acsrecingr1234",
        ingress_queue_endpoint="https://acsrecingr1234.queue.core.windows.net/",
        runtime_account_name="acsrecrt1234",
        app_insights_connection_string="InstrumentationKey=00000000-0000-0000-0000-000000000000",
        **options,
    )


def test_the_settings_the_program_writes_start_the_function_code_in_azure() -> None:
    """What Pulumi writes is a complete, valid environment for ``Settings.from_env``."""
    written = _written(delete_from_acs_after_archive=False)
    assert all(isinstance(value, str) for value in written.values())

    runtime = settings.Settings.from_env(written)  # type: ignore[arg-type]

    assert runtime.uses_managed_identity_for_acs
    assert runtime.archive_account_name == "acsrecarch1234"
    assert runtime.ingress_account == "acsrecingr1234"
    assert runtime.archive_storage_connection_string is None
    assert runtime.acs_media_endpoint_override is None
    assert runtime.delete_from_acs_after_archive is False
    assert not runtime.publishes_events  # no topic given: nothing is written, nothing published


def test_the_topic_endpoint_the_program_writes_is_one_the_function_code_accepts() -> None:
    """ARM's ``endpoint`` of a custom topic, as the program passes it on, starts the code."""
    endpoint = "https://acsrec-events1234.westeurope-1.eventgrid.azure.net/api/events"
    written = _written(delete_from_acs_after_archive=True, recording_events_topic_endpoint=endpoint)

    runtime = settings.Settings.from_env(written)  # type: ignore[arg-type]

    assert runtime.recording_events_topic_endpoint == endpoint
    assert runtime.recording_events_topic_key is None  # the managed identity signs in


def test_the_callback_key_source_is_the_same_on_both_sides() -> None:
    assert (
        infra_function_app.CALLBACK_OIDC_METADATA_URL == settings.DEFAULT_CALLBACK_OIDC_METADATA_URL
    )


def test_the_log_alert_matches_what_the_app_logs() -> None:
    assert set(monitoring.ALERT_MARKERS) == {
        archiver.RECORDING_LOST_MARKER,
        archiver.EVENT_REJECTED_MARKER,
        quarantine.RECORDING_UNVERIFIED_MARKER,
        registry_writer.REGISTRY_WRITE_FAILED_MARKER,
        overdue.RECORDING_OVERDUE_MARKER,
        report.RECONCILE_ATTENTION_MARKER,
        announce.EVENT_PUBLISH_FAILED_MARKER,
        states.CALL_ID_CONFLICT_MARKER,
    }
    source = (REPO_ROOT / "functions" / "function_app.py").read_text()
    trigger = re.search(r"@app\.queue_trigger\([^)]*\)\s*\ndef (\w+)", source)
    assert trigger is not None, "function_app.py declares no queue-triggered function"
    assert monitoring.ARCHIVER_FUNCTION_FRAGMENT in trigger.group(1)
    timer = re.search(r"@app\.timer_trigger\([^)]*\)\s*\ndef (\w+)", source)
    assert timer is not None, "function_app.py declares no reconciler timer"
    assert monitoring.ARCHIVER_FUNCTION_FRAGMENT in timer.group(1)


def test_the_alerted_log_lines_are_never_sampled_away() -> None:
    """RECORDING_LOST ends a successful run: its trace line is the only signal the alert has."""
    host = json.loads((REPO_ROOT / "functions" / "host.json").read_text())
    logging = host["logging"]
    excluded = logging["applicationInsights"]["samplingSettings"]["excludedTypes"].split(";")
    assert "Trace" in excluded
    assert logging["logLevel"]["Function"] in {"Trace", "Debug", "Information", "Warning"}
