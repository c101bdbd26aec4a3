"""Contracts between the Pulumi program and the function code, checked from both sides."""

from __future__ import annotations

import json
import re

from infra import function_app as infra_function_app
from infra import monitoring
from recording_pipeline import archiver, settings
from scripts.processes import REPO_ROOT


def test_infra_sets_exactly_the_settings_the_function_code_reads_in_azure() -> None:
    assert set(infra_function_app.RUNTIME_SETTING_NAMES) == set(settings.AZURE_SETTING_NAMES)
    assert not set(infra_function_app.RUNTIME_SETTING_NAMES) & set(
        settings.LOCAL_ONLY_SETTING_NAMES
    )
    assert set(settings.LOCAL_ONLY_SETTING_NAMES) <= set(infra_function_app.FORBIDDEN_SETTING_NAMES)


def test_the_callback_key_source_is_the_same_on_both_sides() -> None:
    assert (
        infra_function_app.CALLBACK_OIDC_METADATA_URL == settings.DEFAULT_CALLBACK_OIDC_METADATA_URL
    )


def test_the_log_alert_matches_what_the_archiver_logs() -> None:
    assert set(monitoring.ARCHIVER_ALERT_MARKERS) == {
        archiver.RECORDING_LOST_MARKER,
        archiver.EVENT_REJECTED_MARKER,
    }
    source = (REPO_ROOT / "functions" / "function_app.py").read_text()
    trigger = re.search(r"@app\.queue_trigger\([^)]*\)\s*\ndef (\w+)", source)
    assert trigger is not None, "function_app.py declares no queue-triggered function"
    assert monitoring.ARCHIVER_FUNCTION_FRAGMENT in trigger.group(1)


def test_the_alerted_log_lines_are_never_sampled_away() -> None:
    """RECORDING_LOST ends a successful run: its trace line is the only signal the alert has."""
    host = json.loads((REPO_ROOT / "functions" / "host.json").read_text())
    logging = host["logging"]
    excluded = logging["applicationInsights"]["samplingSettings"]["excludedTypes"].split(";")
    assert "Trace" in excluded
    assert logging["logLevel"]["Function"] in {"Trace", "Debug", "Information", "Warning"}
