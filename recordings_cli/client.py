"""The recording API over HTTP, and verified downloads through the links it hands out.

The tool speaks only HTTP to the API, and to Blob Storage through the short-lived read-only links
the API hands out: it needs no storage key, and an Azure login only where the API takes Entra
ID tokens (``--auth entra``, see ``signin``; the token goes to the API, never to Storage).
Downloads stream to disk in blocks, are checked against the size and MD5 the archiver recorded,
are written under a temporary name and renamed only once verified. Every failure becomes a
:class:`CliError` that carries the exit code the command ends with (see ``cli``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from recordings_cli.signin import SignInError

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
BLOCK_SIZE = 1024 * 1024
MANIFEST_FILE = "manifest.json"
# What an archived file name looks like; anything else from the network is never a path here.
_SAFE_FILE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")


class CliError(Exception):
    """Ends the command with ``exit_code`` after printing ``message`` (one line) to stderr."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class RecordingsClient:
    """The recording API over HTTP; every failure becomes a :class:`CliError`.

    :param base_url: the API's base URL, with or without the trailing ``/api``.
    :param function_key: sent as ``x-functions-key``; never shown.
    :keyword timeout: seconds per request.
    :keyword transport: an httpx transport (tests).
    :keyword auth: adds the Entra ID bearer token (``signin.BearerAuth``); None: the key only.
    """

    def __init__(
        self,
        base_url: str,
        function_key: str | None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        self.base_url = normalise_base_url(base_url)
        headers = {"x-functions-key": function_key} if function_key else {}
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=timeout,
            transport=transport,
            auth=auth,
        )
        self._has_key = bool(function_key)
        self._signs_in = auth is not None

    def close(self) -> None:
        self._http.close()

    def start(
        self, body: dict[str, Any], idempotency_key: str | None
    ) -> tuple[dict[str, Any], bool]:
        """The API's answer, and whether it was a replay (``Idempotent-Replayed: true``): the
        key had already started a recording, and nothing new was started."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        response = self._send("POST", "/api/recordings", json=body, headers=headers)
        replayed = response.headers.get("Idempotent-Replayed", "").lower() == "true"
        return self._json(response), replayed

    def transition(self, recording_id: str, action: str) -> dict[str, Any]:
        if action == "stop":
            return self._call("DELETE", _recording_path(recording_id))
        return self._call("POST", f"{_recording_path(recording_id)}/{action}")

    def get(self, recording_id: str) -> dict[str, Any]:
        return self._call("GET", _recording_path(recording_id))

    def list_page(self, params: dict[str, Any]) -> dict[str, Any]:
        query = {key: value for key, value in params.items() if value is not None}
        return self._call("GET", "/api/recordings", params=query)

    def manifest(self, recording_id: str) -> dict[str, Any]:
        return self._call("GET", f"{_recording_path(recording_id)}/archive/manifest")

    def file_link(self, recording_id: str, name: str) -> dict[str, Any]:
        return self._call(
            "GET", f"{_recording_path(recording_id)}/archive/files/{quote(name, safe='')}"
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return self._json(self._send(method, path, **kwargs))

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as error:
            raise CliError(
                f"the API at {self.base_url} did not answer in time ({type(error).__name__}); "
                "retry, or raise --timeout",
                EXIT_UNREACHABLE,
            ) from error
        except httpx.TransportError as error:
            raise CliError(
                f"cannot reach the API at {self.base_url}: {_reason(error)}. Is it running? "
                "(`make up` prints its URL; set --api-url or RECORDINGS_API_URL)",
                EXIT_UNREACHABLE,
            ) from error
        except SignInError as error:
            raise CliError(f"Entra ID sign-in failed: {error}", EXIT_REFUSED) from None
        if response.status_code >= 400:
            raise CliError(self._refusal(response), EXIT_REFUSED)
        return response

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body: dict[str, Any] = response.json()
        except ValueError as error:
            raise CliError(
                f"the API answered {response.status_code} with a body that is not JSON; "
                f"is {self.base_url} the recording API?",
                EXIT_REFUSED,
            ) from error
        return body

    def _auth_hint(self, response: httpx.Response) -> str:
        """What to check after a 401 or 403, from what this client sent."""
        bearer_refused = response.headers.get("WWW-Authenticate", "").startswith("Bearer")
        if response.status_code == 403 and bearer_refused:
            return (
                " The token is valid but its client or app role is not admitted "
                "(the API's apiAllowedClientIds / apiRequiredRole)."
            )
        if response.status_code != 401:
            return ""
        if bearer_refused:
            return (
                " Check the sign-in: --scope (or RECORDINGS_API_SCOPE) must be the API's "
                "audience + /.default."
                if self._signs_in
                else " The API takes Entra ID tokens: add --auth entra (or RECORDINGS_AUTH=entra)."
            )
        return (
            " Check the function key (--function-key or RECORDINGS_FUNCTION_KEY)."
            if self._has_key
            else " No function key was given: set --function-key or RECORDINGS_FUNCTION_KEY."
        )

    def _refusal(self, response: httpx.Response) -> str:
        """One line: status, title, detail and field of the problem (or what there is)."""
        try:
            problem = response.json()
        except ValueError:
            problem = None
        if isinstance(problem, dict) and "detail" in problem:
            line = f"{response.status_code} {problem.get('title', '')}: {problem['detail']}"
            if problem.get("field"):
                line += f" (field: {problem['field']})"
        else:
            line = f"{response.status_code} {response.reason_phrase}"
        line += self._auth_hint(response)
        retry_after = response.headers.get("Retry-After")
        if retry_after:
            line += f" Retry after {retry_after} s."
        return line


def normalise_base_url(url: str) -> str:
    """``http://host:7071``, ``http://host:7071/`` and ``http://host:7071/api`` are the same."""
    url = url.strip().rstrip("/")
    return url[: -len("/api")] if url.endswith("/api") else url


def api_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be the API's base URL, or None (checked before any request)."""
    try:
        parsed = urlsplit(url.strip())
        parsed.port  # noqa: B018 - raises ValueError for a port that is not a number 0-65535
    except ValueError as error:
        return f"{url!r} is not a URL ({error})"
    if parsed.scheme not in {"http", "https"} or not parsed.hostname:
        return (
            f"{url!r} is not an http:// or https:// URL with a host, "
            "e.g. http://127.0.0.1:7071/api (`make up` prints it)"
        )
    return None


def _recording_path(recording_id: str) -> str:
    return f"/api/recordings/{quote(recording_id, safe='')}"


def _reason(error: httpx.TransportError) -> str:
    """A short reason, without the trailing period the caller's sentence adds."""
    if isinstance(error, httpx.ConnectError):
        text = str(error).lower()
        if "refused" in text:
            return "connection refused"
        if "name or service" in text or "nodename" in text or "getaddrinfo" in text:
            return "unknown host"
    return (str(error) or type(error).__name__).rstrip(". ")


def file_name(blob: Any) -> str | None:
    return blob.rsplit("/", 1)[-1] if isinstance(blob, str) and blob else None


@dataclass
class Download:
    name: str
    size: int | None = None
    problem: str | None = None
    path: Path | None = None

    @property
    def verified(self) -> bool:
        return self.problem is None


def archived_file_names(manifest: dict[str, Any]) -> list[str]:
    """Content and metadata files in chunk order, then ``manifest.json``."""
    names: list[str] = []
    for chunk in manifest.get("chunks") or []:
        for key in ("contentBlob", "metadataBlob"):
            name = file_name(chunk.get(key))
            if name and name not in names:
                names.append(name)
    return [*names, MANIFEST_FILE]


def download_file(
    client: RecordingsClient, recording_id: str, name: str, out_dir: Path
) -> Download:
    """Fetch one file through its link; keep it only when its size and MD5 match.

    The bytes go to ``<name>.part`` while they arrive (MD5 computed on the way) and the file is
    renamed to ``<name>`` only once verified, so a name in ``out_dir`` always holds a verified
    file. The link (a bearer secret for 15 minutes) is never printed.
    """
    if not _SAFE_FILE_NAME.fullmatch(name):
        return Download(name, problem="refused: not a plain file name")
    try:
        link = client.file_link(recording_id, name)
    except CliError as error:
        if error.exit_code == EXIT_UNREACHABLE:
            raise
        return Download(name, problem=str(error))
    target = out_dir / name
    partial = out_dir / f"{name}.part"
    digest = hashlib.md5()  # noqa: S324 - the integrity check Azure Storage itself uses
    size = 0
    try:
        with httpx.stream("GET", link["url"], timeout=60.0) as response:
            if response.status_code != 200:
                return Download(name, problem=f"storage answered {response.status_code}")
            with partial.open("wb") as sink:
                for block in response.iter_bytes(BLOCK_SIZE):
                    sink.write(block)
                    digest.update(block)
                    size += len(block)
    except httpx.TransportError as error:
        _discard(partial)
        return Download(name, size, problem=f"download interrupted: {_reason(error)}")
    problem = None
    if size != link.get("size"):
        problem = f"size {size:,} != {link.get('size')}"
    elif base64.b64encode(digest.digest()).decode() != link.get("contentMd5"):
        problem = "MD5 differs from the manifest"
    if problem is not None:
        _discard(partial)
        return Download(name, size, problem=problem)
    partial.replace(target)
    return Download(name, size, path=target)


def _discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
