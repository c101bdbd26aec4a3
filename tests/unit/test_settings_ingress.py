"""The ingress account: queues and dead letters are reached there, media and the registry in the
archive account; locally one connection string still reaches everything."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from tests.support.azurite import UNUSED_STORAGE_CONNECTION_STRING

AZURE = {
    "ACS_ENDPOINT": "https://acs.communication.azure.com",
    "ACS_RESOURCE_ID": "/subscriptions/s/resourceGroups/g/providers/"
    "Microsoft.Communication/communicationServices/a",
    "ACS_IMMUTABLE_RESOURCE_ID": "immutable",
    "ARCHIVE_ACCOUNT_NAME": "acsrecarch1",
}


def _hosts(environ: dict[str, str]) -> dict[str, str]:
    from recording_pipeline import clients
    from recording_pipeline.settings import Settings

    settings = Settings.from_env(environ)
    built = {
        "events": clients.queue_client(settings, settings.events_queue),
        "poison": clients.queue_client(settings, settings.poison_queue),
        "dead_letters": clients.dead_letter_container_client(settings),
        "recordings": clients.recordings_container_client(settings),
        "registry": clients.registry_table_client(settings),
        "blob_service": clients.archive_blob_service_client(settings),
    }
    return {name: str(urlparse(client.url).hostname) for name, client in built.items()}


def test_queues_and_dead_letters_are_reached_in_the_ingress_account() -> None:
    hosts = _hosts({**AZURE, "INGRESS_ACCOUNT_NAME": "acsrecingr1"})
    assert hosts == {
        "events": "acsrecingr1.queue.core.windows.net",
        "poison": "acsrecingr1.queue.core.windows.net",
        "dead_letters": "acsrecingr1.blob.core.windows.net",
        "recordings": "acsrecarch1.blob.core.windows.net",
        "registry": "acsrecarch1.table.core.windows.net",
        "blob_service": "acsrecarch1.blob.core.windows.net",
    }


def test_without_an_ingress_account_the_archive_account_holds_everything() -> None:
    hosts = _hosts(AZURE)
    assert {host.split(".")[0] for host in hosts.values()} == {"acsrecarch1"}


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (
            {"INGRESS_ACCOUNT_NAME": "Ingress-1"},
            "INGRESS_ACCOUNT_NAME ('Ingress-1') must be a valid storage account name",
        ),
        (
            {
                "ARCHIVE_ACCOUNT_NAME": "",
                "ARCHIVE_STORAGE_CONNECTION_STRING": UNUSED_STORAGE_CONNECTION_STRING,
                "INGRESS_ACCOUNT_NAME": "acsrecingr1",
            },
            "INGRESS_ACCOUNT_NAME applies only with ARCHIVE_ACCOUNT_NAME",
        ),
    ],
)
def test_a_bad_ingress_setting_is_named(extra: dict[str, str], problem: str) -> None:
    from recording_pipeline.settings import Settings, SettingsError

    with pytest.raises(SettingsError) as raised:
        Settings.from_env({**AZURE, **extra})
    assert any(p.startswith(problem) for p in raised.value.problems), raised.value.problems
