# ruff: noqa: N818 - classes are named after the service's error codes, as ACS and Azurite do
"""Service errors as data: each class carries the HTTP status and the ACS-style error code.

The provider and the handlers only raise these; one middleware (``app.error_serializer``) turns
them into ``{"error": {"code", "message"}}`` (plus ``details`` when the error has them, as Event
Grid's answers do) and ``x-ms-error-code``, which is what azure-core maps to
``HttpResponseError`` / ``ResourceNotFoundError`` / ``ClientAuthenticationError``.
"""

from __future__ import annotations

from typing import ClassVar


class ServiceError(Exception):
    """Base of every error the emulator answers with."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "InternalServerError"

    def __init__(
        self,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})
        self.details = list(details or [])


class BadRequest(ServiceError):
    status = 400
    code = "BadRequest"


class InvalidField(BadRequest):
    """A request field broke a rule; the message names the field, the value and the rule."""

    def __init__(self, field: str, rule: str, value: object = None) -> None:
        shown = "" if value is None else f" (got {value!r})"
        super().__init__(f"Invalid value for '{field}': {rule}{shown}.")
        self.field = field


class UnsupportedApiVersion(BadRequest):
    code = "UnsupportedApiVersion"


class Unauthorized(ServiceError):
    status = 401
    code = "Unauthorized"


class RecordingNotFound(ServiceError):
    status = 404
    code = "RecordingNotFound"


class CallNotFound(ServiceError):
    status = 404
    code = "CallNotFound"


class ObjectNotFound(ServiceError):
    status = 404
    code = "NotFound"


class RouteNotFound(ServiceError):
    status = 404
    code = "NotFound"


class MethodNotAllowed(ServiceError):
    status = 405
    code = "MethodNotAllowed"


class RecordingAlreadyInProgress(ServiceError):
    status = 409
    code = "Conflict"


class RangeNotSatisfiable(ServiceError):
    status = 416
    code = "InvalidRange"


class TooManyRequests(ServiceError):
    status = 429
    code = "TooManyRequests"


class InjectedServerError(ServiceError):
    """A 5xx chosen by fault injection; its status is set per instance."""

    code = "ServiceUnavailable"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.instance_status = status

    @property
    def http_status(self) -> int:
        return self.instance_status


class NotImplementedByEmulator(ServiceError):
    status = 501
    code = "NotImplemented"


class ClockIsNotManual(ServiceError):
    status = 409
    code = "ClockIsNotManual"


# -- the Event Grid custom topic (emulator/topic.py) ----------------------------------------------


class TopicBadRequest(ServiceError):
    """400 from the topic; ``details`` carries the rule broken (the emulator's own code)."""

    status = 400
    code = "BadRequest"

    def __init__(self, detail_code: str, message: str) -> None:
        super().__init__(message, details=[{"code": detail_code, "message": message}])


class TopicUnauthorized(ServiceError):
    status = 401
    code = "Unauthorized"


class TopicPayloadTooLarge(ServiceError):
    status = 413
    code = "PayloadTooLarge"

    def __init__(self, message: str) -> None:
        super().__init__(message, details=[{"code": "PayloadTooLarge", "message": message}])


class TopicNotConfigured(ServiceError):
    """No ``--topic-key``: this emulator serves no topic (Event Grid answers 404 for a wrong
    endpoint)."""

    status = 404
    code = "NotFound"


def http_status_of(error: ServiceError) -> int:
    """Status to answer with: per-instance for injected faults, per-class otherwise."""
    return error.http_status if isinstance(error, InjectedServerError) else error.status
