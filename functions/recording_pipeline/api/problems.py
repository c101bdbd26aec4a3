"""RFC 9457 problem details: the one shape every error answer of the API takes.

Route handlers and services only *raise* :class:`ProblemError`; one handler in ``app.py``
renders it. Keeping the wire shape here means a client (and the OpenAPI document) sees the same
``type``/``title``/``status``/``detail``/``field`` fields for a bad body, a missing key, an
unknown recording or an ACS outage, and nothing else (no stack trace, no upstream secret).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse

PROBLEM_MEDIA_TYPE = "application/problem+json"
_TYPE_PREFIX = "urn:acs-call-recording:problem:"


class FieldError(BaseModel):
    """One broken rule; a 400 lists every one it found."""

    field: str = Field(description="The offending field (body field, header or path parameter).")
    detail: str = Field(description="The rule the value broke.")


class ProblemDetails(BaseModel):
    """The body of every error answer (``application/problem+json``)."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="A URN naming the kind of problem; stable for clients.")
    title: str = Field(description="A short, fixed summary of the problem kind.")
    status: int = Field(description="The HTTP status code, repeated for convenience.")
    detail: str = Field(description="What went wrong with this request.")
    field: str | None = Field(default=None, description="The offending field, when there is one.")
    errors: list[FieldError] | None = Field(
        default=None, description="Every broken rule, when the request broke more than one."
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a route that may answer these problem statuses."""
    return {status: {"model": ProblemDetails} for status in statuses}


class ProblemError(Exception):
    """An error answer: raised anywhere below the routes, rendered once by the API."""

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str,
        *,
        field: str | None = None,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.title = title
        self.detail = detail
        self.field = field
        self.errors = errors
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        details = ProblemDetails(
            type=_TYPE_PREFIX + self.kind,
            title=self.title,
            status=self.status,
            detail=self.detail,
            field=self.field,
            errors=self.errors,
        )
        return details.model_dump(exclude_none=True)


def problem_response(problem: ProblemError) -> JSONResponse:
    """The HTTP answer of a problem (rendered by the app's handler and by the request guard)."""
    return JSONResponse(
        problem.body(),
        status_code=problem.status,
        headers=problem.headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def invalid_request(errors: list[FieldError]) -> ProblemError:
    """400 for a request that broke one or more rules; ``field`` names the first one."""
    first = errors[0]
    detail = first.detail if len(errors) == 1 else f"{len(errors)} problems; first: {first.detail}"
    return ProblemError(
        400,
        "invalid-request",
        "The request is invalid",
        detail,
        field=first.field,
        errors=errors,
    )


def invalid_field(field: str, detail: str) -> ProblemError:
    return invalid_request([FieldError(field=field, detail=detail)])


def unauthorized(detail: str) -> ProblemError:
    return ProblemError(401, "unauthorized", "Authentication failed", detail)


def token_refused(status: int, kind: str, detail: str, www_authenticate: str) -> ProblemError:
    """401 (no usable token) or 403 (a valid token that may not call this API), with the RFC
    6750 challenge that tells the client what to fix."""
    title = "Bearer token refused" if status == 401 else "Caller not allowed"
    return ProblemError(
        status,
        kind,
        title,
        detail,
        field="Authorization",
        headers={"WWW-Authenticate": www_authenticate},
    )


def oidc_unavailable(what: str) -> ProblemError:
    """503: the signing keys needed to check ``what`` cannot be fetched now."""
    return ProblemError(
        503,
        "oidc-unavailable",
        f"{what} keys unavailable",
        "The OIDC metadata or keys could not be fetched; retry later.",
        headers={"Retry-After": "5"},
    )


def body_too_large(limit: int) -> ProblemError:
    return ProblemError(
        413,
        "body-too-large",
        "The request body is too large",
        f"The body of this route may hold at most {limit} bytes.",
        field="body",
    )


def recording_not_found(recording_id: str) -> ProblemError:
    return ProblemError(
        404,
        "recording-not-found",
        "Recording not found",
        f"No recording with id {recording_id!r} is known to this API.",
        field="recordingId",
    )


def call_not_found(field: str) -> ProblemError:
    return ProblemError(
        404,
        "call-not-found",
        "Call not found",
        f"ACS does not know an active call with this {field}.",
        field=field,
    )


def transition_not_allowed(action: str, state: str, allowed_from: tuple[str, ...]) -> ProblemError:
    return ProblemError(
        409,
        "transition-not-allowed",
        "Transition not allowed in the current state",
        f"Cannot {action} a recording in state {state!r}; "
        f"{action} is allowed only from {', '.join(repr(s) for s in allowed_from)}.",
        field="recordingId",
    )


def call_already_recorded(field: str, recording_id: str | None) -> ProblemError:
    by = f" by recording {recording_id!r}" if recording_id else ""
    return ProblemError(
        409,
        "call-already-recorded",
        "Call already being recorded",
        f"This call ({field}) is already being recorded{by}; ACS records a call once at a "
        "time: stop that recording before starting another.",
        field=field,
    )


def conflict(detail: str, *, field: str | None = None) -> ProblemError:
    return ProblemError(409, "conflict", "Conflict with the current state", detail, field=field)


def idempotency_key_reused() -> ProblemError:
    return ProblemError(
        422,
        "idempotency-key-reused",
        "Idempotency-Key reused with a different request",
        "This Idempotency-Key was first used with a different request body; "
        "use a new key for a new request.",
        field="Idempotency-Key",
    )


def upstream_misconfigured(detail: str) -> ProblemError:
    return ProblemError(502, "upstream-configuration", "ACS rejected this app's identity", detail)


def upstream_unavailable(detail: str, *, retry_after_seconds: int) -> ProblemError:
    return ProblemError(
        503,
        "upstream-unavailable",
        "ACS is throttling or unavailable",
        detail,
        headers={"Retry-After": str(retry_after_seconds)},
    )


def registry_unavailable(*, retry_after_seconds: int) -> ProblemError:
    return ProblemError(
        503,
        "registry-unavailable",
        "The recording registry is unavailable",
        "The registry table could not be reached; retry later.",
        headers={"Retry-After": str(retry_after_seconds)},
    )


def not_archived(recording_id: str, status: str | None, error: str | None) -> ProblemError:
    """409: the recording exists, its archive does not (yet, or it failed)."""
    state = {
        None: "has no archive yet (ACS publishes the files after the recording stops)",
        "archiving": "is being archived now; retry in a few seconds",
        "lost": "could not be archived: ACS no longer had the files",
        "failed": "could not be archived",
    }.get(status, f"has archive status {status!r}")
    reason = f" ({error})" if error else ""
    return ProblemError(
        409,
        "not-archived",
        "The recording is not archived",
        f"Recording {recording_id!r} {state}{reason}.",
        field="recordingId",
    )


def archived_file_not_found(recording_id: str, file_name: str, known: list[str]) -> ProblemError:
    """404 for a file name the manifest does not list (also every path-like name)."""
    shown = file_name if len(file_name) <= 80 else file_name[:77] + "..."
    listed = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")
    return ProblemError(
        404,
        "archived-file-not-found",
        "No such archived file",
        f"Recording {recording_id!r} has no archived file named {shown!r}; its files are: "
        f"{listed}.",
        field="fileName",
    )


def archived_file_missing(file_name: str) -> ProblemError:
    return ProblemError(
        404,
        "archived-file-missing",
        "Archived file no longer stored",
        f"{file_name} is listed in the manifest but is no longer in Blob Storage "
        "(deleted by the retention rule or by hand).",
        field="fileName",
    )


def file_in_archive_tier(file_name: str, archive_status: str | None) -> ProblemError:
    progress = f" Rehydration is in progress ({archive_status})." if archive_status else ""
    return ProblemError(
        409,
        "file-in-archive-tier",
        "Archived file is offline (Archive tier)",
        f"{file_name} is in the Archive tier and cannot be read until it is rehydrated to the "
        f"Hot or Cool tier (Set Blob Tier; this can take hours).{progress}",
        field="fileName",
    )


def archive_inconsistent(detail: str) -> ProblemError:
    return ProblemError(502, "archive-inconsistent", "The archive cannot be read", detail)


def storage_misconfigured(detail: str) -> ProblemError:
    return ProblemError(502, "storage-configuration", "Blob Storage refused this app", detail)


def archive_unavailable(*, retry_after_seconds: int) -> ProblemError:
    return ProblemError(
        503,
        "archive-unavailable",
        "The archive storage is unavailable",
        "Blob Storage could not be reached; retry later.",
        headers={"Retry-After": str(retry_after_seconds)},
    )
