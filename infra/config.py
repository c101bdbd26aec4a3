"""Typed, validated stack configuration, read once before any resource is registered.

Every key lives in one table (:data:`CONFIG_FIELDS`) with its type, default, rule and
description, so the program, the README table (``python -m scripts.config_table``) and the tests
all speak about the same keys. A bad value stops the program with ONE line that names the key,
the value and the rule, because a half-registered stack is worse than no stack.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

PROJECT = "acs-call-recording"
APP_TAG = PROJECT

#: Data locations an ACS resource accepts (Microsoft.Communication/communicationServices
#: ``dataLocation``); recordings and call data stay in this geography.
ACS_DATA_LOCATIONS = (
    "Africa",
    "Asia Pacific",
    "Australia",
    "Brazil",
    "Canada",
    "Europe",
    "France",
    "Germany",
    "India",
    "Japan",
    "Korea",
    "Norway",
    "Switzerland",
    "UAE",
    "UK",
    "United States",
)
#: Instance memory sizes a Flex Consumption (FC1) app may use.
FLEX_INSTANCE_MEMORY_MB = (512, 2048, 4096)
#: Tags the program sets on every taggable resource; the policy pack requires them.
REQUIRED_TAG_KEYS = ("app", "environment", "managed-by")

_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
_REGION = re.compile(r"^[a-z][a-z0-9]{2,39}$")
_PREFIX = re.compile(r"^[a-z][a-z0-9]{1,9}$")
_RESOURCE_GROUP = re.compile(r"^[-\w._()]{1,90}$")
_TAG_KEY = re.compile(r"^[^<>%&\\?/]{1,512}$")


class ConfigError(ValueError):
    """A config value broke its rule; ``str()`` is the one line shown to the user."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)


@dataclass(frozen=True)
class ConfigField:
    """One stack config key: how it is parsed, its default and the rule it must meet."""

    key: str
    type_name: str
    default: Any
    rule: str
    description: str
    parse: Callable[[str, str], Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class RecordingConfig:
    """The validated configuration of one stack. Build it with :func:`parse_config`."""

    stack: str
    location: str
    resource_group_name: str
    name_prefix: str
    data_location: str
    cool_after_days: int
    cold_after_days: int
    archive_after_days: int
    retention_days: int
    dead_letter_retention_days: int
    version_retention_days: int
    soft_delete_retention_days: int
    immutability_days: int
    lock_immutability: bool
    retain_archive_on_destroy: bool
    delete_from_acs_after_archive: bool
    event_max_delivery_attempts: int
    event_ttl_minutes: int
    function_instance_memory_mb: int
    function_maximum_instances: int
    custom_roles: bool
    role_propagation_wait_seconds: int
    alert_email: str
    log_retention_days: int
    tags: Mapping[str, str]
    deploy_code: bool
    package_path: str

    @property
    def resource_tags(self) -> dict[str, str]:
        """User tags plus the three required ones, which user tags cannot override."""
        return {
            **dict(self.tags),
            "app": APP_TAG,
            "environment": self.stack,
            "managed-by": "pulumi",
        }


# --- parsers: each gets (key, raw text) and raises ConfigError naming key, value and rule ----


def _parse_int(low: int, high: int) -> Callable[[str, str], int]:
    def parse(key: str, raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ConfigError(key, f"{key} ({raw!r}) must be a whole number") from None
        if not low <= value <= high:
            raise ConfigError(key, f"{key} ({value}) must be between {low} and {high}")
        return value

    return parse


def _parse_bool(key: str, raw: str) -> bool:
    text = raw.strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise ConfigError(key, f"{key} ({raw!r}) must be true or false")


def _parse_pattern(pattern: re.Pattern[str], rule: str) -> Callable[[str, str], str]:
    def parse(key: str, raw: str) -> str:
        value = raw.strip()
        if not pattern.fullmatch(value):
            raise ConfigError(key, f"{key} ({raw!r}) must be {rule}")
        return value

    return parse


def _parse_optional_pattern(pattern: re.Pattern[str], rule: str) -> Callable[[str, str], str]:
    required = _parse_pattern(pattern, rule)

    def parse(key: str, raw: str) -> str:
        return "" if not raw.strip() else required(key, raw)

    return parse


def _parse_data_location(key: str, raw: str) -> str:
    by_lower = {name.lower(): name for name in ACS_DATA_LOCATIONS}
    value = by_lower.get(raw.strip().lower())
    if value is None:
        raise ConfigError(
            key,
            f"{key} ({raw!r}) must be one of the ACS data locations: "
            + ", ".join(ACS_DATA_LOCATIONS),
        )
    return value


def _parse_memory(key: str, raw: str) -> int:
    value = _parse_int(0, 1_000_000)(key, raw)
    if value not in FLEX_INSTANCE_MEMORY_MB:
        allowed = ", ".join(str(size) for size in FLEX_INSTANCE_MEMORY_MB)
        raise ConfigError(key, f"{key} ({value}) must be one of {allowed} (Flex Consumption)")
    return value


def _parse_tags(key: str, raw: str) -> dict[str, str]:
    try:
        value = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError:
        raise ConfigError(key, f"{key} ({raw!r}) must be a JSON object of strings") from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ConfigError(key, f"{key} ({raw!r}) must be a JSON object of strings")
    for tag in value:
        if tag in REQUIRED_TAG_KEYS:
            raise ConfigError(key, f"{key} ({tag!r}) must not set a tag the program owns")
        if not _TAG_KEY.fullmatch(tag):
            raise ConfigError(
                key, f"{key} ({tag!r}) tag names must be 1-512 chars without <>%&\\?/"
            )
    return value


def _parse_text(key: str, raw: str) -> str:
    return raw.strip()


CONFIG_FIELDS: tuple[ConfigField, ...] = (
    ConfigField(
        "location",
        "string",
        "westeurope",
        "Azure region name (lowercase, e.g. westeurope)",
        "Region of every regional resource (ACS and the Event Grid topic are global).",
        _parse_pattern(_REGION, "a lowercase Azure region name such as westeurope"),
    ),
    ConfigField(
        "resourceGroupName",
        "string",
        "",
        "empty or an existing resource group name",
        "Deploy into this existing resource group instead of creating one.",
        _parse_optional_pattern(_RESOURCE_GROUP, "a resource group name (1-90 chars)"),
    ),
    ConfigField(
        "namePrefix",
        "string",
        "acsrec",
        "2-10 lowercase letters/digits, letter first",
        "Start of every resource name; storage names add a random suffix.",
        _parse_pattern(_PREFIX, "2-10 lowercase letters or digits starting with a letter"),
    ),
    ConfigField(
        "dataLocation",
        "string",
        "Europe",
        "one of the ACS data locations",
        "Where ACS keeps call data at rest (e.g. Europe, United States, UK).",
        _parse_data_location,
    ),
    ConfigField(
        "coolAfterDays",
        "int",
        30,
        "0-36500, < coldAfterDays, < archiveAfterDays",
        "Recordings move to the Cool tier this many days after they were written.",
        _parse_int(0, 36500),
    ),
    ConfigField(
        "coldAfterDays",
        "int",
        90,
        "0-36500, < archiveAfterDays",
        "Recordings move to the Cold tier this many days after they were written.",
        _parse_int(0, 36500),
    ),
    ConfigField(
        "archiveAfterDays",
        "int",
        180,
        "0-36500, < retentionDays",
        "Recordings move to the Archive tier this many days after they were written.",
        _parse_int(0, 36500),
    ),
    ConfigField(
        "retentionDays",
        "int",
        2555,
        "1-36500",
        "Recordings are deleted this many days after they were written (2555 = 7 years).",
        _parse_int(1, 36500),
    ),
    ConfigField(
        "deadLetterRetentionDays",
        "int",
        30,
        "1-365",
        "Dead-lettered Event Grid events are deleted after this many days.",
        _parse_int(1, 365),
    ),
    ConfigField(
        "versionRetentionDays",
        "int",
        30,
        "1-365",
        "Previous blob versions are deleted this many days after they were superseded.",
        _parse_int(1, 365),
    ),
    ConfigField(
        "softDeleteRetentionDays",
        "int",
        14,
        "1-365",
        "Deleted blobs and containers can be restored for this many days.",
        _parse_int(1, 365),
    ),
    ConfigField(
        "immutabilityDays",
        "int",
        0,
        "0-36500 (0 = off), <= retentionDays",
        "Time-based WORM retention on the recordings container.",
        _parse_int(0, 36500),
    ),
    ConfigField(
        "lockImmutability",
        "bool",
        False,
        "true only with immutabilityDays > 0",
        "Lock the immutability policy (irreversible: nobody can shorten or remove it).",
        _parse_bool,
    ),
    ConfigField(
        "retainArchiveOnDestroy",
        "bool",
        True,
        "true or false",
        "Keep the archive account and its recordings on pulumi destroy.",
        _parse_bool,
    ),
    ConfigField(
        "deleteFromAcsAfterArchive",
        "bool",
        True,
        "true or false",
        "Delete the ACS copy of a recording once it is archived and verified.",
        _parse_bool,
    ),
    ConfigField(
        "eventMaxDeliveryAttempts",
        "int",
        30,
        "2-30 (1 would mean no retry)",
        "Event Grid delivery attempts before an event is dead-lettered.",
        _parse_int(2, 30),
    ),
    ConfigField(
        "eventTtlMinutes",
        "int",
        1440,
        "1-1440",
        "Event Grid keeps retrying an event for at most this many minutes.",
        _parse_int(1, 1440),
    ),
    ConfigField(
        "functionInstanceMemoryMb",
        "int",
        2048,
        "512, 2048 or 4096",
        "Memory of each Flex Consumption instance.",
        _parse_memory,
    ),
    ConfigField(
        "functionMaximumInstances",
        "int",
        40,
        "1-1000",
        "Scale-out limit of the Function App (Flex Consumption accepts 1-1000; the region's "
        "core quota, 250 by default, caps real scale-out).",
        _parse_int(1, 1000),
    ),
    ConfigField(
        "customRoles",
        "bool",
        True,
        "true or false",
        "Grant custom roles with exactly the storage permissions the code uses (the deployer "
        "needs Microsoft.Authorization/roleDefinitions/write); false grants the least built-in "
        "roles that cover them (Storage Blob Data Owner on the recordings container).",
        _parse_bool,
    ),
    ConfigField(
        "rolePropagationWaitSeconds",
        "int",
        120,
        "0-900",
        "Wait this long after Event Grid's role assignments are created before creating the "
        "subscription that Azure validates with them (first deployment only).",
        _parse_int(0, 900),
    ),
    ConfigField(
        "alertEmail",
        "string",
        "",
        "empty or an email address",
        "Receives the alerts; empty keeps the action group without receivers.",
        _parse_optional_pattern(_EMAIL, "an email address such as ops@example.com"),
    ),
    ConfigField(
        "logRetentionDays", "int", 30, "30-730", "Log Analytics retention.", _parse_int(30, 730)
    ),
    ConfigField(
        "tags",
        "object",
        {},
        "JSON object of strings; not app/environment/managed-by",
        "Extra tags on every taggable resource.",
        _parse_tags,
    ),
    ConfigField(
        "deployCode",
        "bool",
        True,
        "true or false",
        "Deploy the function code (OneDeploy) during pulumi up.",
        _parse_bool,
    ),
    ConfigField(
        "packagePath",
        "string",
        "",
        "empty or a path to a zip file",
        "Deploy this prebuilt zip instead of building dist/functionapp.zip.",
        _parse_text,
    ),
)
FIELDS_BY_KEY = {f.key: f for f in CONFIG_FIELDS}


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


def _default_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def parse_config(raw: Mapping[str, str], stack: str) -> RecordingConfig:
    """Parse and validate stack config given as ``{key: text}`` (keys without the project prefix).

    :raises ConfigError: the first of :func:`config_problems`: an unknown key, a value that
        breaks its own rule, or a combination of values that cannot work together.
    """
    problems = config_problems(raw)
    if problems:
        raise problems[0]
    values = {
        _snake(f.key): f.parse(f.key, raw.get(f.key, _default_text(f.default)))
        for f in CONFIG_FIELDS
    }
    return RecordingConfig(stack=stack, **values)


def config_problems(raw: Mapping[str, str]) -> list[ConfigError]:
    """Every broken rule at once (unknown keys, then each key in table order, then combinations).

    The preflight lists them all, so three bad keys take one run to fix, not three. A
    combination is judged only when each of its keys parsed on its own.
    """
    problems = [
        ConfigError(
            key,
            f"{key} is not a known config key of {PROJECT}; known keys: "
            + ", ".join(FIELDS_BY_KEY),
        )
        for key in raw
        if key not in FIELDS_BY_KEY
    ]
    values: dict[str, Any] = {}
    for f in CONFIG_FIELDS:
        try:
            values[f.key] = f.parse(f.key, raw.get(f.key, _default_text(f.default)))
        except ConfigError as error:
            problems.append(error)
    for keys, rule in _COMBINATIONS:
        if all(key in values for key in keys):
            problem = rule(*(values[key] for key in keys))
            if problem is not None:
                problems.append(problem)
    return problems


def _must_be_less(a_key: str, b_key: str) -> tuple[tuple[str, ...], Callable[..., Any]]:
    def rule(a: int, b: int) -> ConfigError | None:
        return (
            None if a < b else ConfigError(a_key, f"{a_key} ({a}) must be less than {b_key} ({b})")
        )

    return (a_key, b_key), rule


def _immutability_within_retention(immutability: int, retention: int) -> ConfigError | None:
    if immutability <= retention:
        return None
    return ConfigError(
        "immutabilityDays",
        f"immutabilityDays ({immutability}) must not be longer than retentionDays "
        f"({retention}): the lifecycle rule could not delete what WORM protects",
    )


def _lock_needs_immutability(lock: bool, immutability: int) -> ConfigError | None:
    if not lock or immutability != 0:
        return None
    return ConfigError(
        "lockImmutability",
        "lockImmutability (true) needs immutabilityDays > 0: there is no policy to lock",
    )


#: Cross-field rules: a lifecycle that moves backwards or WORM that outlives deletion.
_COMBINATIONS: tuple[tuple[tuple[str, ...], Callable[..., ConfigError | None]], ...] = (
    _must_be_less("coolAfterDays", "archiveAfterDays"),
    _must_be_less("coldAfterDays", "archiveAfterDays"),
    _must_be_less("coolAfterDays", "coldAfterDays"),
    _must_be_less("archiveAfterDays", "retentionDays"),
    (("immutabilityDays", "retentionDays"), _immutability_within_retention),
    (("lockImmutability", "immutabilityDays"), _lock_needs_immutability),
)


def read_stack_config(stack: str) -> RecordingConfig:
    """Read this project's keys from the Pulumi runtime config and validate them."""
    from pulumi.runtime.config import CONFIG  # the raw map; pulumi.Config has no key listing

    prefix = f"{PROJECT}:"
    raw = {
        key[len(prefix) :]: (value if isinstance(value, str) else json.dumps(value))
        for key, value in CONFIG.get().items()
        if key.startswith(prefix)
    }
    return parse_config(raw, stack)
