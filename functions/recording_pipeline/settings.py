"""Runtime settings of the Function App, read from environment variables once and validated.

In Azure every value comes from the app settings that the Pulumi program writes (endpoints and
names only: identities, not keys, reach ACS and Storage). Locally the same names point at the
emulator and Azurite, and four local-only settings carry an access key, a connection string, a
media-host override and the local function key. A bad environment stops start-up with ONE
message that lists every missing or invalid setting, so a misconfigured deployment is fixed in
one round trip instead of one error at a time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlparse

DEFAULT_CALLBACK_OIDC_METADATA_URL = (
    "https://acscallautomation.communication.azure.com/calling/.well-known/acsopenidconfiguration"
)
MIB = 1024 * 1024
#: NCRONTAB (with seconds) of the reconciler's timer: every 10 minutes.
DEFAULT_RECONCILE_SCHEDULE = "0 */10 * * * *"

#: Settings the Pulumi program must set on the Function App (checked by a test on both sides).
AZURE_SETTING_NAMES = (
    "ACS_ENDPOINT",
    "ACS_RESOURCE_ID",
    "ACS_IMMUTABLE_RESOURCE_ID",
    "ARCHIVE_ACCOUNT_NAME",
    "INGRESS_ACCOUNT_NAME",
    "RECORDINGS_CONTAINER",
    "EVENTS_QUEUE",
    "REGISTRY_TABLE",
    "CALLBACK_OIDC_METADATA_URL",
    "DELETE_FROM_ACS_AFTER_ARCHIVE",
    "DEAD_LETTER_CONTAINER",
    "RECONCILE_SCHEDULE",
    "OVERDUE_AFTER_MINUTES",
    "LOST_AFTER_HOURS",
    "MAX_POISON_REPLAYS",
)
#: Settings that only make sense on one machine; the Pulumi program must never set them.
LOCAL_ONLY_SETTING_NAMES = (
    "ACS_ACCESS_KEY",
    "ACS_MEDIA_ENDPOINT_OVERRIDE",
    "ARCHIVE_STORAGE_CONNECTION_STRING",
    "LOCAL_FUNCTION_KEY",
)
#: Optional tuning knobs with working defaults.
TUNING_SETTING_NAMES = ("ARCHIVE_BLOCK_SIZE_BYTES", "ARCHIVE_MAX_CONCURRENCY")


class SettingsError(ValueError):
    """Raised with every problem found in the environment, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid Function App settings:\n" + "\n".join(f"- {p}" for p in problems))


class Secret:
    """A string that never shows itself in ``repr``, ``str`` or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    """Typed view of the app settings; build it with :meth:`from_env`."""

    acs_endpoint: str
    acs_resource_id: str
    acs_immutable_resource_id: str
    recordings_container: str = "recordings"
    events_queue: str = "recording-events"
    registry_table: str = "recordings"
    callback_oidc_metadata_url: str = DEFAULT_CALLBACK_OIDC_METADATA_URL
    delete_from_acs_after_archive: bool = True
    dead_letter_container: str = "event-deadletter"
    #: Read by the Functions host (the timer's ``%RECONCILE_SCHEDULE%``); validated here so a
    #: bad value stops the app at start with the other problems.
    reconcile_schedule: str = DEFAULT_RECONCILE_SCHEDULE
    overdue_after_minutes: int = 30
    lost_after_hours: int = 25
    max_poison_replays: int = 5
    archive_account_name: str | None = None
    #: The account Event Grid writes to (events queue, poison queue, dead letters); unset, the
    #: archive account holds them too.
    ingress_account_name: str | None = None
    archive_storage_connection_string: Secret | None = field(default=None, repr=False)
    acs_access_key: Secret | None = field(default=None, repr=False)
    acs_media_endpoint_override: str | None = None
    local_function_key: Secret | None = field(default=None, repr=False)
    archive_block_size_bytes: int = 8 * MIB
    archive_max_concurrency: int = 4

    @property
    def uses_managed_identity_for_acs(self) -> bool:
        return self.acs_access_key is None

    @property
    def ingress_account(self) -> str | None:
        """The account of the queues and dead letters in Azure (managed identity)."""
        return self.ingress_account_name or self.archive_account_name

    @property
    def poison_queue(self) -> str:
        """The Functions host moves a message here after its last failed dequeue."""
        return f"{self.events_queue}-poison"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every setting.

        :raises SettingsError: listing every missing or invalid setting at once.
        """
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        values: dict[str, Any] = {
            "acs_endpoint": reader.required("ACS_ENDPOINT", _http_url),
            "acs_resource_id": reader.required("ACS_RESOURCE_ID", _acs_resource_id),
            "acs_immutable_resource_id": reader.required("ACS_IMMUTABLE_RESOURCE_ID", _non_blank),
            "recordings_container": reader.optional(
                "RECORDINGS_CONTAINER", _container_name, "recordings"
            ),
            "events_queue": reader.optional("EVENTS_QUEUE", _queue_name, "recording-events"),
            "registry_table": reader.optional("REGISTRY_TABLE", _table_name, "recordings"),
            "callback_oidc_metadata_url": reader.optional(
                "CALLBACK_OIDC_METADATA_URL", _http_url, DEFAULT_CALLBACK_OIDC_METADATA_URL
            ),
            "delete_from_acs_after_archive": reader.optional(
                "DELETE_FROM_ACS_AFTER_ARCHIVE", _boolean, True
            ),
            "dead_letter_container": reader.optional(
                "DEAD_LETTER_CONTAINER", _container_name, "event-deadletter"
            ),
            "reconcile_schedule": reader.optional(
                "RECONCILE_SCHEDULE", _ncrontab, DEFAULT_RECONCILE_SCHEDULE
            ),
            "overdue_after_minutes": reader.optional(
                "OVERDUE_AFTER_MINUTES", _int_between(5, 720), 30
            ),
            # ACS keeps a recording about 24 hours: "lost" before that would be a guess.
            "lost_after_hours": reader.optional("LOST_AFTER_HOURS", _int_between(24, 72), 25),
            "max_poison_replays": reader.optional("MAX_POISON_REPLAYS", _int_between(0, 20), 5),
            "archive_account_name": reader.optional("ARCHIVE_ACCOUNT_NAME", _account_name, None),
            "ingress_account_name": reader.optional("INGRESS_ACCOUNT_NAME", _account_name, None),
            "archive_storage_connection_string": reader.optional(
                "ARCHIVE_STORAGE_CONNECTION_STRING", _secret, None
            ),
            "acs_access_key": reader.optional("ACS_ACCESS_KEY", _secret, None),
            "acs_media_endpoint_override": reader.optional(
                "ACS_MEDIA_ENDPOINT_OVERRIDE", _loopback_url, None
            ),
            "local_function_key": reader.optional("LOCAL_FUNCTION_KEY", _secret, None),
            "archive_block_size_bytes": reader.optional(
                "ARCHIVE_BLOCK_SIZE_BYTES", _int_between(256 * 1024, 100 * MIB), 8 * MIB
            ),
            "archive_max_concurrency": reader.optional(
                "ARCHIVE_MAX_CONCURRENCY", _int_between(1, 32), 4
            ),
        }
        has_account = values["archive_account_name"] is not None
        has_connection = values["archive_storage_connection_string"] is not None
        if has_account == has_connection:
            reader.problems.append(
                "exactly one of ARCHIVE_ACCOUNT_NAME (Azure, managed identity) and "
                "ARCHIVE_STORAGE_CONNECTION_STRING (local) must be set"
                + (", not both" if has_account else "")
            )
        if has_connection and values["ingress_account_name"] is not None:
            reader.problems.append(
                "INGRESS_ACCOUNT_NAME applies only with ARCHIVE_ACCOUNT_NAME (managed identity); "
                "ARCHIVE_STORAGE_CONNECTION_STRING reaches one account for everything"
            )
        if reader.problems:
            raise SettingsError(reader.problems)
        return cls(**values)


T = TypeVar("T")
_MISSING = object()


class _Reader:
    """Collects problems instead of stopping at the first one."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def required(self, name: str, parse: Callable[[str], T]) -> T | None:
        raw = self.env.get(name, "").strip()
        if not raw:
            self.problems.append(f"{name} is required")
            return None
        return self._parse(name, raw, parse)

    def optional(self, name: str, parse: Callable[[str], T], default: Any) -> Any:
        raw = self.env.get(name, "").strip()
        if not raw:
            return default
        return self._parse(name, raw, parse)

    def _parse(self, name: str, raw: str, parse: Callable[[str], T]) -> T | None:
        try:
            return parse(raw)
        except ValueError as error:
            shown = "***" if parse is _secret else repr(raw)
            self.problems.append(f"{name} ({shown}) {error}")
            return None


def _non_blank(raw: str) -> str:
    return raw


def _secret(raw: str) -> Secret:
    return Secret(raw)


def _http_url(raw: str) -> str:
    parsed = urlparse(raw)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc:
        raise ValueError("must be an absolute http(s) URL")
    if parsed.scheme == "http" and parsed.hostname not in {"127.0.0.1", "localhost", "::1"}:
        raise ValueError("must use https (plain http is only allowed for 127.0.0.1/localhost)")
    return raw.rstrip("/")


def _loopback_url(raw: str) -> str:
    """The media override may only point at this machine (the emulator).

    Requests it rewrites carry ACS credentials (in Azure, a managed-identity token), so an
    override to any other host would hand those credentials to it.
    """
    url = _http_url(raw)
    if urlparse(url).hostname not in {"127.0.0.1", "localhost", "::1"}:
        raise ValueError("must point at 127.0.0.1 or localhost (it is for the local emulator)")
    return url


def _acs_resource_id(raw: str) -> str:
    parts = raw.strip("/").split("/")
    if (
        len(parts) != 8
        or parts[0].lower() != "subscriptions"
        or parts[2].lower() != "resourcegroups"
        or parts[4].lower() != "providers"
        or parts[5].lower() != "microsoft.communication"
        or parts[6].lower() != "communicationservices"
    ):
        raise ValueError(
            "must be /subscriptions/<id>/resourceGroups/<group>/providers/"
            "Microsoft.Communication/communicationServices/<name>"
        )
    return raw


def _boolean(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in {"true", "1", "yes"}:
        return True
    if lowered in {"false", "0", "no"}:
        return False
    raise ValueError("must be true or false")


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError("must be a whole number") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


_NCRONTAB_FIELD = re.compile(r"^[0-9*/,\-]+$")


def _ncrontab(raw: str) -> str:
    """Six NCRONTAB fields (second minute hour day month weekday) of digits, ``*/,-``."""
    fields = raw.split()
    if len(fields) != 6 or not all(_NCRONTAB_FIELD.match(f) for f in fields):
        raise ValueError(
            "must be an NCRONTAB expression of six fields, e.g. '0 */10 * * * *' (every 10 min)"
        )
    return " ".join(fields)


def _name_rule(low: int, high: int, allowed: str, what: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if not low <= len(raw) <= high or any(c not in allowed for c in raw):
            raise ValueError(
                f"must be a valid {what} name ({low}-{high} characters of {allowed!r})"
            )
        return raw

    return parse


_LOWER_DIGITS = "abcdefghijklmnopqrstuvwxyz0123456789"
_container_name = _name_rule(3, 63, _LOWER_DIGITS + "-", "blob container")
_queue_name = _name_rule(3, 63, _LOWER_DIGITS + "-", "queue")
_table_name = _name_rule(3, 63, _LOWER_DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "table")
_account_name = _name_rule(3, 24, _LOWER_DIGITS, "storage account")
