"""Stack config values set with ``pulumi config set --secret``: accepted, never shown.

Pulumi keeps such a value encrypted in the stack file (``secure: v1:...``) and hands it to the
program decrypted, marked secret. The preflight cannot decrypt it: it accepts a known key with an
encrypted value and leaves the value's rules to the program, which judges the decrypted value with
the same rules and shows no value in a message about it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pulumi.runtime.config import set_all_config

from infra.config import CONFIG_FIELDS, PROJECT, ConfigError, read_stack_config
from scripts import preflight

CIPHERTEXT = "v1:Q2lwaGVydGV4dC10ZWxsLXRhbGU="


def _stack_file(folder: Path, *lines: str) -> None:
    (folder / "Pulumi.s.yaml").write_text("config:\n" + "".join(f"  {line}\n" for line in lines))


@pytest.mark.parametrize("key", [f.key for f in CONFIG_FIELDS])
def test_any_key_set_as_a_secret_passes_the_preflight_and_is_not_shown(
    tmp_path: Path, key: str
) -> None:
    _stack_file(tmp_path, f"{PROJECT}:{key}:", f"  secure: {CIPHERTEXT}")

    passed = preflight.check_stack_config("s", root=tmp_path)

    assert passed == (
        f"Pulumi.s.yaml is valid; its secret values ({key}) are checked by `pulumi preview`, "
        "which can decrypt them"
    )
    assert CIPHERTEXT not in passed


def test_a_secret_inside_an_object_value_counts_as_a_secret_value(tmp_path: Path) -> None:
    _stack_file(tmp_path, f"{PROJECT}:tags:", "  owner:", f"    secure: {CIPHERTEXT}")

    assert "its secret values (tags)" in preflight.check_stack_config("s", root=tmp_path)


def test_plain_values_are_still_judged_beside_a_secret_one_and_an_unknown_secret_key_named(
    tmp_path: Path,
) -> None:
    _stack_file(
        tmp_path,
        f"{PROJECT}:alertEmail:",
        f"  secure: {CIPHERTEXT}",
        f"{PROJECT}:colour:",
        f"  secure: {CIPHERTEXT}",
        f"{PROJECT}:logRetentionDays: 7",
        "azure-native:clientSecret:",
        f"  secure: {CIPHERTEXT}",
    )

    with pytest.raises(preflight.PreflightError) as caught:
        preflight.check_stack_config("s", root=tmp_path)

    problems = caught.value.problems
    assert len(problems) == 2, problems
    assert problems[0].startswith("Pulumi.s.yaml: colour is not a known config key")
    assert problems[1].startswith("Pulumi.s.yaml: logRetentionDays (7) must be between 30")
    assert CIPHERTEXT not in "\n".join(problems)


@pytest.mark.parametrize(
    ("key", "secret_value"),
    [
        ("alertEmail", "not-an-address-tell-tale"),
        ("apiAllowedIpRanges", '["203.0.113.0/33-tell-tale"]'),
        ("archiveAfterDays", "20000"),  # breaks a combination: must be less than retentionDays
    ],
)
def test_the_program_judges_a_secret_value_without_showing_it(key: str, secret_value: str) -> None:
    set_all_config({f"{PROJECT}:{key}": secret_value}, secret_keys=[f"{PROJECT}:{key}"])
    try:
        with pytest.raises(ConfigError) as caught:
            read_stack_config("s")
    finally:
        set_all_config({}, secret_keys=[])

    assert secret_value not in str(caught.value)
    assert "tell-tale" not in str(caught.value) and "20000" not in str(caught.value)
    assert caught.value.key == key
    assert "a secret value is involved, so no value is shown" in str(caught.value)


def test_the_same_bad_value_not_set_as_a_secret_is_shown() -> None:
    set_all_config({f"{PROJECT}:alertEmail": "not-an-address"}, secret_keys=[])
    try:
        with pytest.raises(ConfigError) as caught:
            read_stack_config("s")
    finally:
        set_all_config({}, secret_keys=[])

    assert "'not-an-address'" in str(caught.value)
