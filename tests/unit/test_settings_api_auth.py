"""``API_AUTH`` and the ``API_*`` token settings: parsed, tied to the mode, every problem listed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recording_pipeline.settings import (
    API_AUTH_MODES,
    ENTRA_METADATA_URL,
    Settings,
    SettingsError,
)

TENANT = "72F988BF-86F1-41AF-91AB-2D7CD011DB47"
CLIENT = "11111111-2222-3333-4444-555555555555"
BASE = {
    "ACS_ENDPOINT": "https://acs.communication.azure.com",
    "ACS_RESOURCE_ID": "/subscriptions/s/resourceGroups/g/providers/"
    "Microsoft.Communication/communicationServices/a",
    "ACS_IMMUTABLE_RESOURCE_ID": "immutable",
    "ARCHIVE_ACCOUNT_NAME": "archive",
}


def problems_of(environ: dict[str, str]) -> list[str]:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({**BASE, **environ})
    return raised.value.problems


def test_function_key_is_the_default_and_needs_no_token_setting() -> None:
    default = Settings.from_env(BASE)
    assert (default.api_auth, default.requires_function_key, default.requires_bearer_token) == (
        "functionKey",
        True,
        False,
    )
    assert default.api_metadata_url is None


@pytest.mark.parametrize(
    ("raw", "mode", "key", "token"),
    [
        ("entraId", "entraId", False, True),
        ("ENTRAID", "entraId", False, True),
        ("both", "both", True, True),
    ],
)
def test_entra_modes_read_tenant_audiences_clients_and_role(
    raw: str, mode: str, key: bool, token: bool
) -> None:
    parsed = Settings.from_env(
        {
            **BASE,
            "API_AUTH": raw,
            "API_TENANT_ID": TENANT,
            "API_AUDIENCE": f"api://acs-call-recording, {CLIENT.upper()}",
            "API_ALLOWED_CLIENT_IDS": f"{CLIENT},{TENANT}",
            "API_REQUIRED_ROLE": "Recordings.ReadWrite",
        }
    )
    assert (parsed.api_auth, parsed.requires_function_key, parsed.requires_bearer_token) == (
        mode,
        key,
        token,
    )
    assert parsed.api_tenant_id == TENANT.lower()
    assert parsed.api_audiences == ("api://acs-call-recording", CLIENT)
    assert parsed.api_allowed_client_ids == {CLIENT, TENANT.lower()}
    assert parsed.api_required_role == "Recordings.ReadWrite"
    assert parsed.api_metadata_url == ENTRA_METADATA_URL.format(tenant=TENANT.lower())
    assert parsed.api_metadata_url == (
        f"https://login.microsoftonline.com/{TENANT.lower()}/v2.0/.well-known/openid-configuration"
    )


def test_a_metadata_url_overrides_the_tenant_default() -> None:
    parsed = Settings.from_env(
        {
            **BASE,
            "API_AUTH": "entraId",
            "API_TENANT_ID": TENANT,
            "API_AUDIENCE": CLIENT,
            "API_ALLOWED_CLIENT_IDS": CLIENT,
            "API_OIDC_METADATA_URL": "http://127.0.0.1:9/t/v2.0/.well-known/openid-configuration",
        }
    )
    assert parsed.api_metadata_url == "http://127.0.0.1:9/t/v2.0/.well-known/openid-configuration"


def test_entra_id_without_tenant_and_audience_lists_both_with_the_other_problems() -> None:
    problems = problems_of({"API_AUTH": "entraId", "REGISTRY_TABLE": "bad_table!"})
    assert "API_TENANT_ID is required with API_AUTH entraId" in problems
    assert "API_AUDIENCE is required with API_AUTH entraId" in problems
    assert any(problem.startswith("REGISTRY_TABLE") for problem in problems)


@pytest.mark.parametrize("mode", ["entraId", "both"])
def test_a_token_mode_must_name_its_callers_by_client_id_or_role(mode: str) -> None:
    """A tenant and an audience alone would admit any app of the tenant (Entra ID issues an
    app-only token for any API to any service principal), so one of the two is required."""
    environ = {"API_AUTH": mode, "API_TENANT_ID": TENANT, "API_AUDIENCE": CLIENT}
    assert problems_of({**environ, "API_ALLOWED_CLIENT_IDS": " "}) == [
        f"API_ALLOWED_CLIENT_IDS or API_REQUIRED_ROLE is required with API_AUTH {mode}: a tenant "
        "and an audience alone admit any application or user of the tenant that obtains a token"
    ]
    by_client = Settings.from_env({**BASE, **environ, "API_ALLOWED_CLIENT_IDS": CLIENT})
    by_role = Settings.from_env({**BASE, **environ, "API_REQUIRED_ROLE": "Recordings.ReadWrite"})
    assert (by_client.api_allowed_client_ids, by_client.api_required_role) == ({CLIENT}, None)
    assert (by_role.api_allowed_client_ids, by_role.api_required_role) == (
        frozenset(),
        "Recordings.ReadWrite",
    )


def test_token_settings_without_a_token_mode_are_refused_by_name() -> None:
    problems = problems_of(
        {
            "API_TENANT_ID": TENANT,
            "API_AUDIENCE": CLIENT,
            "API_ALLOWED_CLIENT_IDS": CLIENT,
            "API_REQUIRED_ROLE": "Recordings.ReadWrite",
            "API_OIDC_METADATA_URL": "https://login.example/.well-known/openid-configuration",
        }
    )
    assert problems == [
        f"{name} applies only with API_AUTH entraId or both (API_AUTH is functionKey)"
        for name in (
            "API_TENANT_ID",
            "API_AUDIENCE",
            "API_ALLOWED_CLIENT_IDS",
            "API_REQUIRED_ROLE",
            "API_OIDC_METADATA_URL",
        )
    ]


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("API_AUTH", "oauth", "must be one of functionKey, entraId, both"),
        ("API_TENANT_ID", "contoso.onmicrosoft.com", "must be a GUID"),
        ("API_AUDIENCE", "acs-call-recording", "must be an application ID URI"),
        ("API_AUDIENCE", "api://a,,api://b", "no empty item"),
        ("API_AUDIENCE", "api://a,api://a", "must not repeat a value"),
        ("API_AUDIENCE", ",".join(f"api://a{n}" for n in range(6)), "at most 5 values"),
        ("API_AUDIENCE", "api://a?x=1", "must be an application ID URI"),
        ("API_ALLOWED_CLIENT_IDS", f"{CLIENT},backend-app", "must be a GUID"),
        ("API_REQUIRED_ROLE", "Recordings Read", "must be an app role value"),
        ("API_REQUIRED_ROLE", ".hidden", "not starting with '.'"),
        ("API_REQUIRED_ROLE", "r" * 121, "1-120 printable ASCII"),
        ("API_OIDC_METADATA_URL", "http://login.example/x", "must use https"),
    ],
)
def test_each_bad_value_names_the_setting_and_its_rule(name: str, value: str, rule: str) -> None:
    environ = {"API_AUTH": "entraId", "API_TENANT_ID": TENANT, "API_AUDIENCE": CLIENT}
    problems = problems_of({**environ, name: value})
    [problem] = [p for p in problems if p.startswith(name)]
    assert rule in problem


# Entra ID's allowed app role characters: printable ASCII except space, '"' and '\'.
ROLE_ALPHABET = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"\\')


@settings(max_examples=200, derandomize=True, database=None)
@given(
    role=st.text(alphabet=ROLE_ALPHABET, min_size=1, max_size=120).filter(
        lambda role: not role.startswith(".")  # refused (tested above)
    )
)
def test_every_role_entra_id_allows_is_accepted_as_written(role: str) -> None:
    environ = {
        **BASE,
        "API_AUTH": "entraId",
        "API_TENANT_ID": TENANT,
        "API_AUDIENCE": CLIENT,
        "API_REQUIRED_ROLE": role,
    }
    assert Settings.from_env(environ).api_required_role == role


@settings(max_examples=200, derandomize=True, database=None)
@given(raw=st.text(max_size=60))
def test_any_api_auth_value_is_a_mode_or_one_named_problem(raw: str) -> None:
    try:
        parsed = Settings.from_env({**BASE, "API_AUTH": raw})
    except SettingsError as error:
        assert any(p.startswith("API_AUTH") or "API_AUTH" in p for p in error.problems)
        return
    assert parsed.api_auth in API_AUTH_MODES
