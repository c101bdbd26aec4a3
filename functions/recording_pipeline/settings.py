"""Runtime settings of the Function App, read from environment variables once and validated.

In Azure every value comes from the app settings that the Pulumi program writes (endpoints and
names only: identities, not keys, reach ACS and Storage). Locally the same names point at the
emulator and Azurite, and four local-only settings carry an access key, a connection string, a
media-host override and the local function key (and, for the local Event Grid topic, its
key). A bad environment stops start-up with ONE
message that lists every missing or invalid setting, so a misconfigured deployment is fixed in
one round trip instead of one error at a time.

``API_AUTH`` says who may call the recording API (not the callbacks, which ACS signs, nor the
health route): ``functionKey`` (the Functions host checks the function key), ``entraId`` (the
app requires an Entra ID bearer token for ``API_AUDIENCE`` from tenant ``API_TENANT_ID``, and
from a caller that ``API_ALLOWED_CLIENT_IDS`` lists or that holds ``API_REQUIRED_ROLE``) or
``both`` (the key and the token). The ``API_*`` settings of a mode are checked together with
the rest, so a half-configured Entra ID setup stops the app with every missing piece named.
"""

from __future__ import annotations

import base64
import binascii
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
#: Values of ``API_AUTH``: who may call the recording API.
API_AUTH_FUNCTION_KEY = "functionKey"
API_AUTH_ENTRA_ID = "entraId"
API_AUTH_BOTH = "both"
API_AUTH_MODES = (API_AUTH_FUNCTION_KEY, API_AUTH_ENTRA_ID, API_AUTH_BOTH)
#: Entra ID's v2.0 OpenID metadata of a tenant (public cloud); ``API_OIDC_METADATA_URL`` overrides.
ENTRA_METADATA_URL = (
    "https://login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration"
)
#: At most this many audiences (an application ID URI and a client id are the usual pair).
MAX_API_AUDIENCES = 5
#: At most this many allowed client applications.
MAX_ALLOWED_CLIENT_IDS = 50
#: NCRONTAB (with seconds) of the reconciler's timer: every 10 minutes.
DEFAULT_RECONCILE_SCHEDULE = "0 */10 * * * *"

#: The ``API_*`` settings that only ``entraId`` and ``both`` read (empty with ``functionKey``).
API_TOKEN_SETTING_NAMES = (
    "API_TENANT_ID",
    "API_AUDIENCE",
    "API_ALLOWED_CLIENT_IDS",
    "API_REQUIRED_ROLE",
    "API_OIDC_METADATA_URL",
)
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
    "RECORDING_EVENTS_TOPIC_ENDPOINT",
    "DEAD_LETTER_CONTAINER",
    "RECONCILE_SCHEDULE",
    "OVERDUE_AFTER_MINUTES",
    "LOST_AFTER_HOURS",
    "MAX_POISON_REPLAYS",
    "API_AUTH",
    *API_TOKEN_SETTING_NAMES,
)
#: Settings that only make sense on one machine; the Pulumi program must never set them.
LOCAL_ONLY_SETTING_NAMES = (
    "ACS_ACCESS_KEY",
    "ACS_MEDIA_ENDPOINT_OVERRIDE",
    "ARCHIVE_STORAGE_CONNECTION_STRING",
    "LOCAL_FUNCTION_KEY",
    "RECORDING_EVENTS_TOPIC_KEY",
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
    #: The Event Grid custom topic that receives the recordings' CloudEvents (its ``endpoint``,
    #: ending in ``/api/events``); None: no events are published.
    recording_events_topic_endpoint: str | None = None
    #: Local only: the topic's access key (the emulator's). In Azure the managed identity signs
    #: in (the topic has local auth disabled), so this is never set there.
    recording_events_topic_key: Secret | None = field(default=None, repr=False)
    archive_block_size_bytes: int = 8 * MIB
    archive_max_concurrency: int = 4
    api_auth: str = API_AUTH_FUNCTION_KEY
    api_tenant_id: str | None = None
    #: Accepted ``aud`` values: an application ID URI and/or the API's client id.
    api_audiences: tuple[str, ...] = ()
    #: Empty: any client application of the tenant.
    api_allowed_client_ids: frozenset[str] = frozenset()
    api_required_role: str | None = None
    #: None: Entra ID's metadata of ``api_tenant_id`` (:attr:`api_metadata_url`).
    api_oidc_metadata_url: str | None = None

    @property
    def requires_function_key(self) -> bool:
        """The recording API needs the function key (``functionKey`` or ``both``)."""
        return self.api_auth != API_AUTH_ENTRA_ID

    @property
    def requires_bearer_token(self) -> bool:
        """The recording API needs an Entra ID bearer token (``entraId`` or ``both``)."""
        return self.api_auth != API_AUTH_FUNCTION_KEY

    @property
    def api_metadata_url(self) -> str | None:
        """Where the tenant's signing keys are published, when bearer tokens are required."""
        if not self.requires_bearer_token or self.api_tenant_id is None:
            return None
        return self.api_oidc_metadata_url or ENTRA_METADATA_URL.format(tenant=self.api_tenant_id)

    @property
    def uses_managed_identity_for_acs(self) -> bool:
        return self.acs_access_key is None

    @property
    def publishes_events(self) -> bool:
        return self.recording_events_topic_endpoint is not None

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
                "ARCHIVE_STORAGE_CONNECTION_STRING", _storage_connection_string, None
            ),
            "acs_access_key": reader.optional("ACS_ACCESS_KEY", _secret, None),
            "acs_media_endpoint_override": reader.optional(
                "ACS_MEDIA_ENDPOINT_OVERRIDE", _loopback_url, None
            ),
            "local_function_key": reader.optional("LOCAL_FUNCTION_KEY", _secret, None),
            "recording_events_topic_endpoint": reader.optional(
                "RECORDING_EVENTS_TOPIC_ENDPOINT", _topic_endpoint, None
            ),
            "recording_events_topic_key": reader.optional(
                "RECORDING_EVENTS_TOPIC_KEY", _secret, None
            ),
            "archive_block_size_bytes": reader.optional(
                "ARCHIVE_BLOCK_SIZE_BYTES", _int_between(256 * 1024, 100 * MIB), 8 * MIB
            ),
            "archive_max_concurrency": reader.optional(
                "ARCHIVE_MAX_CONCURRENCY", _int_between(1, 32), 4
            ),
            **_api_auth_values(reader),
        }
        has_account = values["archive_account_name"] is not None
        has_connection = values["archive_storage_connection_string"] is not None
        if has_account == has_connection:
            reader.problems.append(
                "exactly one of ARCHIVE_ACCOUNT_NAME (Azure, managed identity) and "
                "ARCHIVE_STORAGE_CONNECTION_STRING (local) must be set"
                + (", not both" if has_account else "")
            )
        if (
            values["recording_events_topic_key"] is not None
            and not env.get("RECORDING_EVENTS_TOPIC_ENDPOINT", "").strip()
        ):
            reader.problems.append(
                "RECORDING_EVENTS_TOPIC_KEY is set without RECORDING_EVENTS_TOPIC_ENDPOINT "
                "(the key is for that topic)"
            )
        if has_connection and values["ingress_account_name"] is not None:
            reader.problems.append(
                "INGRESS_ACCOUNT_NAME applies only with ARCHIVE_ACCOUNT_NAME (managed identity); "
                "ARCHIVE_STORAGE_CONNECTION_STRING reaches one account for everything"
            )
        if reader.problems:
            raise SettingsError(reader.problems)
        return cls(**values)


def _api_auth_values(reader: _Reader) -> dict[str, Any]:
    """The ``API_*`` settings, with the rules that tie them to ``API_AUTH``: a tenant and an
    audience are required for bearer tokens, and the token rules mean nothing without them."""
    values: dict[str, Any] = {
        "api_auth": reader.optional("API_AUTH", _api_auth_mode, API_AUTH_FUNCTION_KEY),
        "api_tenant_id": reader.optional("API_TENANT_ID", _guid, None),
        "api_audiences": reader.optional("API_AUDIENCE", _audiences, ()),
        "api_allowed_client_ids": reader.optional(
            "API_ALLOWED_CLIENT_IDS", _client_ids, frozenset()
        ),
        "api_required_role": reader.optional("API_REQUIRED_ROLE", _app_role, None),
        "api_oidc_metadata_url": reader.optional("API_OIDC_METADATA_URL", _http_url, None),
    }
    mode = values["api_auth"]
    if mode is None:
        return values  # its own problem is listed; the rules below would only guess
    if mode == API_AUTH_FUNCTION_KEY:
        for name in API_TOKEN_SETTING_NAMES:
            if reader.env.get(name, "").strip():
                reader.problems.append(
                    f"{name} applies only with API_AUTH {API_AUTH_ENTRA_ID} or {API_AUTH_BOTH} "
                    f"(API_AUTH is {mode})"
                )
        return values
    for name in ("API_TENANT_ID", "API_AUDIENCE"):
        if not reader.env.get(name, "").strip():
            reader.problems.append(f"{name} is required with API_AUTH {mode}")
    callers = ("API_ALLOWED_CLIENT_IDS", "API_REQUIRED_ROLE")
    if not any(reader.env.get(name, "").strip() for name in callers):
        # Entra ID issues app-only tokens for any API to any service principal of the tenant.
        reader.problems.append(
            f"API_ALLOWED_CLIENT_IDS or API_REQUIRED_ROLE is required with API_AUTH {mode}: a "
            "tenant and an audience alone admit any application or user of the tenant that "
            "obtains a token"
        )
    return values


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
            shown = "***" if parse in _SECRET_PARSERS else repr(raw)
            self.problems.append(f"{name} ({shown}) {error}")
            return None


def _non_blank(raw: str) -> str:
    return raw


def _secret(raw: str) -> Secret:
    return Secret(raw)


#: The endpoints a connection string names (the SDKs need blob, queue and table here).
_STORAGE_ENDPOINTS = ("BlobEndpoint", "QueueEndpoint", "TableEndpoint")


def check_storage_connection_string(raw: str) -> None:
    """Check the shape the Storage SDKs parse, before any of them sees it.

    A malformed one otherwise fails inside ``from_connection_string`` (a traceback), or only at
    the first request when the key is not base64. The messages never repeat the value: it holds
    the account key.

    :raises ValueError: naming the broken rule.
    """
    pairs = [part.split("=", 1) for part in raw.strip().rstrip(";").split(";")]
    if any(len(pair) != 2 or not pair[0].strip() or not pair[1].strip() for pair in pairs):
        raise ValueError(
            "must be Name=value pairs (neither empty) separated by ';', as Azurite or "
            "`az storage account show-connection-string` gives it"
        )
    fields = {name.strip().lower(): value.strip() for name, value in pairs}
    if len(fields) != len(pairs):
        raise ValueError("must name each setting once (names are compared ignoring case)")
    if "usedevelopmentstorage" in fields:
        raise ValueError(
            "must name the account (AccountName and AccountKey, or the endpoints), not "
            "UseDevelopmentStorage: the Tables SDK does not read it; give Azurite's full "
            "connection string"
        )
    account, key = fields.get("accountname"), fields.get("accountkey")
    if account is not None and not _STORAGE_ACCOUNT_NAME.fullmatch(account):
        raise ValueError("must hold an AccountName of 3-24 lowercase letters and digits")
    suffix = fields.get("endpointsuffix")
    if suffix is not None and not _DNS_SUFFIX.fullmatch(suffix):
        raise ValueError("must hold an EndpointSuffix that is a DNS name (core.windows.net)")
    if not (account and key) and not fields.get("sharedaccesssignature"):
        raise ValueError("must hold AccountName and AccountKey, or a SharedAccessSignature")
    if key is not None:
        try:
            base64.b64decode(key, validate=True)
        except binascii.Error:
            raise ValueError("must hold an AccountKey in base64 (the account's key)") from None
    if not account and not all(fields.get(name.lower()) for name in _STORAGE_ENDPOINTS):
        raise ValueError("must hold AccountName, or BlobEndpoint, QueueEndpoint and TableEndpoint")
    for name in _STORAGE_ENDPOINTS:
        endpoint = fields.get(name.lower())
        if endpoint is not None and not _is_http_url(endpoint):
            raise ValueError(f"must hold a {name} that is an absolute http(s) URL")


_STORAGE_ACCOUNT_NAME = re.compile(r"[a-z0-9]{3,24}")
_DNS_SUFFIX = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")


def _storage_connection_string(raw: str) -> Secret:
    check_storage_connection_string(raw)
    return Secret(raw)


#: Parsers of values never shown in a message.
_SECRET_PARSERS = (_secret, _storage_connection_string)


def _is_http_url(raw: str) -> bool:
    parsed = urlparse(raw)
    return parsed.scheme in {"http", "https"} and bool(parsed.netloc)


def _http_url(raw: str) -> str:
    if not _is_http_url(raw):
        raise ValueError("must be an absolute http(s) URL")
    parsed = urlparse(raw)
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


#: The path of an Event Grid topic's publish endpoint (the topic's ``endpoint`` property).
TOPIC_ENDPOINT_PATH = "/api/events"


def _topic_endpoint(raw: str) -> str:
    """The topic's full ``endpoint``: the SDK posts to this URL as it is, so a bare host name
    would publish to ``/`` and be refused."""
    url = _http_url(raw)
    parsed = urlparse(url)
    if parsed.path != TOPIC_ENDPOINT_PATH or parsed.query or parsed.fragment:
        raise ValueError(
            f"must be the topic's endpoint, ending in {TOPIC_ENDPOINT_PATH} (e.g. "
            f"https://<topic>.<region>-1.eventgrid.azure.net{TOPIC_ENDPOINT_PATH})"
        )
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


def _api_auth_mode(raw: str) -> str:
    by_lower = {mode.lower(): mode for mode in API_AUTH_MODES}
    mode = by_lower.get(raw.lower())
    if mode is None:
        raise ValueError(f"must be one of {', '.join(API_AUTH_MODES)}")
    return mode


_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
#: An application ID URI: ``api://...`` or an https URI (of a verified domain), no query.
_APP_ID_URI = re.compile(r"^(api|https)://[^\s?#,]+$")
#: An app role value as Entra ID allows it: 1-120 printable ASCII characters other than space,
#: ``"`` and ``\``, not starting with ``.``.
_APP_ROLE = re.compile(r"^(?!\.)[!#-\[\]-~]{1,120}$")


def _guid(raw: str) -> str:
    if not _GUID.fullmatch(raw):
        raise ValueError("must be a GUID such as 00000000-0000-0000-0000-000000000000")
    return raw.lower()


def _comma_list(raw: str, limit: int, parse: Callable[[str], str], what: str) -> tuple[str, ...]:
    items = [item.strip() for item in raw.split(",")]
    if any(not item for item in items):
        raise ValueError(f"must be {what} separated by commas, with no empty item")
    if len(items) > limit:
        raise ValueError(f"must hold at most {limit} values")
    parsed = tuple(parse(item) for item in items)
    if len(set(parsed)) != len(parsed):
        raise ValueError("must not repeat a value")
    return parsed


def _audience(raw: str) -> str:
    if _GUID.fullmatch(raw):
        return raw.lower()
    if _APP_ID_URI.fullmatch(raw):
        return raw
    raise ValueError(
        f"value {raw[:80]!r} must be an application ID URI (api://... or https://...) or the "
        "API's client id (a GUID)"
    )


def _audiences(raw: str) -> tuple[str, ...]:
    return _comma_list(raw, MAX_API_AUDIENCES, _audience, "audiences")


def _client_ids(raw: str) -> frozenset[str]:
    return frozenset(_comma_list(raw, MAX_ALLOWED_CLIENT_IDS, _guid, "client ids (GUIDs)"))


def _app_role(raw: str) -> str:
    if not _APP_ROLE.fullmatch(raw):
        raise ValueError(
            "must be an app role value: 1-120 printable ASCII characters without spaces, '\"' "
            "or '\\', not starting with '.'"
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
