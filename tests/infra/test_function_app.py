"""Flex Consumption plan, the Function App's hardening and its app settings contract."""

from __future__ import annotations

import re

import pytest

from infra.function_app import (
    FORBIDDEN_SETTING_NAMES,
    HOST_SETTING_NAMES,
    RUNTIME_SETTING_NAMES,
    function_app_settings,
)
from policy.baseline import FLEX_REFUSED_SITE_CONFIG
from recording_pipeline.settings import AZURE_SETTING_NAMES, LOCAL_ONLY_SETTING_NAMES
from tests.infra.harness import ProgramRun, run_program, run_program_with_outputs
from tests.infra.queries import STORAGE_ACCOUNT, dig, one

WEB_APP = "azure-native:web:WebApp"


def _settings(run_registrations: list) -> dict[str, str]:
    app = one(run_registrations, WEB_APP).inputs
    return {item["name"]: item["value"] for item in app["siteConfig"]["appSettings"]}


def test_plan_is_flex_consumption_on_linux(default_run: ProgramRun) -> None:
    plan = one(default_run.registrations, "azure-native:web:AppServicePlan").inputs
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["kind"] == "functionapp"
    assert plan["reserved"] is True


def test_function_app_is_hardened(default_run: ProgramRun) -> None:
    regs = default_run.registrations
    app = one(regs, WEB_APP)
    plan = one(regs, "azure-native:web:AppServicePlan")
    assert app.inputs["kind"] == "functionapp,linux"
    assert app.inputs["serverFarmId"].endswith(f"/serverfarms/{plan.outputs['name']}")
    assert app.inputs["httpsOnly"] is True
    assert app.inputs["identity"] == {"type": "SystemAssigned"}
    site = app.inputs["siteConfig"]
    assert site["minTlsVersion"] == "1.2"
    assert site["scmMinTlsVersion"] == "1.2"
    assert site["remoteDebuggingEnabled"] is False
    # Flex Consumption refuses these (ARM error 51021); FTP is off through the
    # basic-publishing-credentials policies instead.
    assert set(site) == {"appSettings", "minTlsVersion", "scmMinTlsVersion", "http20Enabled",
                         "remoteDebuggingEnabled"}  # fmt: skip
    assert not set(site) & set(FLEX_REFUSED_SITE_CONFIG)


def test_function_app_config_uses_identity_deployment_storage(default_run: ProgramRun) -> None:
    regs = default_run.registrations
    runtime = one(regs, STORAGE_ACCOUNT, "acsrechost").outputs["name"]
    config = one(regs, WEB_APP).inputs["functionAppConfig"]
    storage = dig(config, "deployment", "storage")
    assert storage["type"] == "blobContainer"
    assert storage["value"] == f"https://{runtime}.blob.core.windows.net/app-package"
    assert storage["authentication"] == {"type": "SystemAssignedIdentity"}
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    assert config["scaleAndConcurrency"] == {"instanceMemoryMB": 2048, "maximumInstanceCount": 40}


def test_instance_memory_and_max_instances_come_from_config() -> None:
    regs = run_program({"functionInstanceMemoryMb": 4096, "functionMaximumInstances": 100})
    scale = one(regs, WEB_APP).inputs["functionAppConfig"]["scaleAndConcurrency"]
    assert scale == {"instanceMemoryMB": 4096, "maximumInstanceCount": 100}


def test_basic_publishing_credentials_are_disabled_for_ftp_and_scm(default_run: ProgramRun) -> None:
    regs = default_run.registrations
    app_name = one(regs, WEB_APP).outputs["name"]
    for type_ in ("azure-native:web:WebAppFtpAllowed", "azure-native:web:WebAppScmAllowed"):
        policy = one(regs, type_).inputs
        assert policy["allow"] is False, type_
        assert policy["name"] == app_name, type_


def test_app_settings_are_exactly_the_runtime_and_host_names(default_run: ProgramRun) -> None:
    settings = _settings(default_run.registrations)
    assert list(settings) == [*RUNTIME_SETTING_NAMES, *HOST_SETTING_NAMES]


def test_runtime_setting_names_match_what_the_function_code_reads() -> None:
    assert set(RUNTIME_SETTING_NAMES) == set(AZURE_SETTING_NAMES)
    assert set(LOCAL_ONLY_SETTING_NAMES) <= set(FORBIDDEN_SETTING_NAMES)


def test_app_settings_carry_endpoints_and_names(default_run: ProgramRun) -> None:
    regs = default_run.registrations
    settings = _settings(regs)
    acs = one(regs, "azure-native:communication:CommunicationService")
    archive = one(regs, STORAGE_ACCOUNT, "acsrecarch").outputs["name"]
    ingress = one(regs, STORAGE_ACCOUNT, "acsrecingr").outputs["name"]
    runtime = one(regs, STORAGE_ACCOUNT, "acsrechost").outputs["name"]
    insights = one(regs, "azure-native:applicationinsights:Component").outputs
    assert settings["ACS_ENDPOINT"] == f"https://{acs.outputs['hostName']}"
    assert settings["ACS_RESOURCE_ID"].endswith(
        f"/providers/Microsoft.Communication/communicationServices/{acs.outputs['name']}"
    )
    assert settings["ACS_IMMUTABLE_RESOURCE_ID"] == acs.outputs["immutableResourceId"]
    assert settings["ARCHIVE_ACCOUNT_NAME"] == archive
    assert settings["INGRESS_ACCOUNT_NAME"] == ingress
    assert settings["RECORDINGS_CONTAINER"] == "recordings"
    assert settings["EVENTS_QUEUE"] == "recording-events"
    assert settings["REGISTRY_TABLE"] == "recordings"
    assert settings["CALLBACK_OIDC_METADATA_URL"] == (
        "https://acscallautomation.communication.azure.com/calling/.well-known/"
        "acsopenidconfiguration"
    )
    assert settings["DELETE_FROM_ACS_AFTER_ARCHIVE"] == "true"
    assert settings["AzureWebJobsStorage__accountName"] == runtime
    assert (
        settings["RecordingQueue__queueServiceUri"] == f"https://{ingress}.queue.core.windows.net/"
    )
    assert settings["APPLICATIONINSIGHTS_CONNECTION_STRING"] == insights["connectionString"]
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "Authorization=AAD"


def test_delete_from_acs_after_archive_follows_config() -> None:
    settings = _settings(run_program({"deleteFromAcsAfterArchive": False}))
    assert settings["DELETE_FROM_ACS_AFTER_ARCHIVE"] == "false"


def test_reconciler_settings_follow_config_and_start_the_function_code() -> None:
    """The timer's schedule and thresholds come from stack config; the values the program
    writes are ones the function code's settings accept."""
    from recording_pipeline.settings import Settings

    default = _settings(run_program({}))
    assert (
        default["RECONCILE_SCHEDULE"],
        default["OVERDUE_AFTER_MINUTES"],
        default["LOST_AFTER_HOURS"],
        default["MAX_POISON_REPLAYS"],
        default["DEAD_LETTER_CONTAINER"],
    ) == ("0 */10 * * * *", "30", "25", "5", "event-deadletter")
    settings = _settings(
        run_program(
            {
                "reconcileEveryMinutes": 60,
                "overdueAfterMinutes": 45,
                "lostAfterHours": 30,
                "maxPoisonReplays": 0,
            }
        )
    )
    assert settings["RECONCILE_SCHEDULE"] == "0 0 * * * *"
    runtime = Settings.from_env(
        {
            **{k: v for k, v in settings.items() if isinstance(v, str)},
            "ACS_ENDPOINT": "https://acs.communication.azure.com",
            "ACS_RESOURCE_ID": "/subscriptions/s/resourceGroups/g/providers/"
            "Microsoft.Communication/communicationServices/a",
        }
    )
    assert (
        runtime.reconcile_schedule,
        runtime.overdue_after_minutes,
        runtime.lost_after_hours,
        runtime.max_poison_replays,
    ) == ("0 0 * * * *", 45, 30, 0)


def test_app_settings_hold_no_key_or_local_only_setting(default_run: ProgramRun) -> None:
    settings = _settings(default_run.registrations)
    assert not set(settings) & set(FORBIDDEN_SETTING_NAMES)
    secret_shapes = re.compile(r"AccountKey=|SharedAccessSignature|sig=|AccessKey=|password", re.I)
    leaking = {name: value for name, value in settings.items() if secret_shapes.search(value)}
    assert leaking == {}


def test_settings_function_is_pure_and_ordered() -> None:
    settings = function_app_settings(
        acs_endpoint="https://a",
        acs_resource_id="id",
        acs_immutable_resource_id="imm",
        archive_account_name="arch",
        ingress_account_name="ingr",
        ingress_queue_endpoint="https://ingr.queue.core.windows.net/",
        runtime_account_name="host",
        app_insights_connection_string="InstrumentationKey=x",
        delete_from_acs_after_archive=False,
        recording_events_topic_endpoint="https://t.westeurope-1.eventgrid.azure.net/api/events",
    )
    assert tuple(settings) == RUNTIME_SETTING_NAMES + HOST_SETTING_NAMES
    assert settings["DELETE_FROM_ACS_AFTER_ARCHIVE"] == "false"
    assert settings["AzureWebJobsStorage__accountName"] == "host"


TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
API_CLIENT = "11111111-2222-4333-8444-555555555555"
CALLER = "66666666-7777-4888-9999-000000000000"
ENTRA_CONFIG = {
    "apiAuth": "entraId",
    "apiTenantId": TENANT,
    "apiAudience": f"api://acs-call-recording,{API_CLIENT}",
    "apiAllowedClientIds": [CALLER],
    "apiRequiredRole": "Recordings.ReadWrite",
}


def test_function_key_mode_sets_no_token_setting(default_run: ProgramRun) -> None:
    settings = _settings(default_run.registrations)
    assert {name: value for name, value in settings.items() if name.startswith("API_")} == {
        "API_AUTH": "functionKey",
        "API_TENANT_ID": "",
        "API_AUDIENCE": "",
        "API_ALLOWED_CLIENT_IDS": "",
        "API_REQUIRED_ROLE": "",
        "API_OIDC_METADATA_URL": "",
    }
    assert default_run.outputs["API_AUDIENCE"] == ""


def test_entra_id_settings_and_audience_output_follow_config() -> None:
    run = run_program_with_outputs(ENTRA_CONFIG)
    settings = _settings(run.registrations)
    assert {name: value for name, value in settings.items() if name.startswith("API_")} == {
        "API_AUTH": "entraId",
        "API_TENANT_ID": TENANT,
        "API_AUDIENCE": f"api://acs-call-recording,{API_CLIENT}",
        "API_ALLOWED_CLIENT_IDS": CALLER,
        "API_REQUIRED_ROLE": "Recordings.ReadWrite",
        "API_OIDC_METADATA_URL": f"https://login.microsoftonline.com/{TENANT}/v2.0/.well-known/"
        "openid-configuration",
    }
    # Clients ask for `<first audience>/.default`; the app takes both forms.
    assert run.outputs["API_AUDIENCE"] == "api://acs-call-recording"


@pytest.mark.parametrize("mode", ["functionKey", "entraId", "both"])
def test_the_function_code_accepts_the_api_settings_the_program_writes(mode: str) -> None:
    """What the program writes for each mode starts the function code with that mode."""
    from recording_pipeline.settings import ENTRA_METADATA_URL, Settings

    config = {**ENTRA_CONFIG, "apiAuth": mode} if mode != "functionKey" else {}
    settings = _settings(run_program(config))
    runtime = Settings.from_env(
        {
            **{k: v for k, v in settings.items() if isinstance(v, str)},
            "ACS_ENDPOINT": "https://acs.communication.azure.com",
            "ACS_RESOURCE_ID": "/subscriptions/s/resourceGroups/g/providers/"
            "Microsoft.Communication/communicationServices/a",
        }
    )
    assert runtime.api_auth == mode
    if mode == "functionKey":
        assert runtime.api_metadata_url is None
        return
    assert runtime.api_audiences == ("api://acs-call-recording", API_CLIENT)
    assert runtime.api_allowed_client_ids == {CALLER}
    assert runtime.api_required_role == "Recordings.ReadWrite"
    assert runtime.api_metadata_url == ENTRA_METADATA_URL.format(tenant=TENANT)
