"""Code deployment inside ``pulumi up``: push the package zip to a Flex Consumption app with
OneDeploy, from a Pulumi dynamic provider.

pulumi-azure-native has no OneDeploy resource, and Flex Consumption rejects zipdeploy and
WEBSITE_RUN_FROM_PACKAGE. The provider POSTs the zip to ``<scm>/api/publish`` with an Entra
bearer token, then polls ``<scm>/api/deployments/<id>`` until the deployment ends, because the
publish call can answer 200/202 for a deployment that fails later. Right after the app and
its role assignments were created, RBAC is still propagating, which shows in two ways: the SCM
site answers 401/403 (retried with backoff), or the deployment is accepted and then fails
because the deployment service, acting as the app's identity, gets a storage 403 when it uploads
the package to the deployment container (seen in public reports of first azd and Core Tools
deployments; a retry a minute later succeeds): such a deployment is published again, with a
bounded backoff, and each retry is reported on stderr and in the resource's ``notes`` output.
The note does not claim a cause: in ``network: private`` the same 403 also comes from the
deployment account's firewall when the app resolves its public address (private DNS zone not
linked to the VNet, a custom DNS server that does not forward ``privatelink`` names) or its
private endpoint is not approved; those do not heal by waiting, and the README's failure table
says where to look.
A 404 from the status endpoint is waited out a few times, as Microsoft's azd client does (the
deployment may not be registered yet, or the worker is recycling); 404s that persist after the
deployment was seen are checked against ``/api/deployments/latest`` and, failing that, taken
as azd takes them: the worker recycles once it is done, so the deployment is complete. The
resource's only change trigger is the package's SHA-256: same hash, no redeploy.

The dynamic provider process does not share this program's ``sys.path``, so the registered
provider is a small trampoline pickled by value; it puts the repository root back on the path
and delegates to :class:`OneDeployProvider` here.
"""

from __future__ import annotations

import json
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

REPO_ROOT = str(Path(__file__).resolve().parent.parent)
#: Token audience Kudu (the SCM site) accepts for Entra-authenticated deployments.
SCM_ACCESS_SCOPE = "https://management.azure.com/.default"
PUBLISH_PATH = "/api/publish?type=zip&RemoteBuild=false&Deployer=pulumi"
# Kudu deployment status codes (api/deployments/<id> "status").
STATUS_TEXT = {
    -1: "Cancelled",
    0: "Pending",
    1: "Building",
    2: "Deploying",
    3: "Failed",
    4: "Success",
    5: "Conflict",
    6: "PartialSuccess",
}
STATUS_SUCCESS = 4
IN_PROGRESS = frozenset({0, 1, 2})
DEFAULT_FORBIDDEN_RETRY_DELAYS = (5.0, 10.0, 20.0, 30.0, 30.0, 30.0, 60.0, 60.0, 60.0)
#: Waits before publishing again after a deployment failed on a storage 403 (about 5 minutes).
DEFAULT_STORAGE_RETRY_DELAYS = (30.0, 60.0, 90.0, 120.0)
#: Consecutive 404s the status endpoint may answer before they mean something (azd allows 4).
NOT_FOUND_TOLERATED = 4
INPUT_KEYS = ("app_name", "scm_url", "package_path", "package_sha256")
#: Both must appear in ONE line of a failed deployment's reason or log for it to count as a
#: storage authorization failure ("Failed to upload because Azure Storage responded with
#: Forbidden ... 403 (This request is not authorized to perform this operation ...)"). Every Flex
#: log names its deployment blob on some line, so words spread over the log prove nothing.
_STORAGE_WORDS = re.compile(r"storage|blob", re.IGNORECASE)
_FORBIDDEN_WORDS = re.compile(r"\b403\b|forbidden|not authorized", re.IGNORECASE)


class DeploymentError(RuntimeError):
    """OneDeploy refused or failed the package; the message carries the service's reason."""


class StorageNotYetAuthorizedError(DeploymentError):
    """The deployment failed because storage refused the app: RBAC still propagating, or (private
    mode) a firewall refusing a request that did not come through the private endpoint."""


class CachedTokenSource:
    """An Entra access token for the SCM site from whatever identity is logged in.

    One credential, and its token reused until five minutes before it expires: a deployment
    polls every few seconds, and some credentials (the Azure CLI's) start a process per token.
    """

    def __init__(self) -> None:
        self._credential: Any = None
        self._token: Any = None

    def __call__(self) -> str:
        if self._token is None or self._token.expires_on - 300 < time.time():
            if self._credential is None:
                from azure.identity import DefaultAzureCredential

                self._credential = DefaultAzureCredential()
            self._token = self._credential.get_token(SCM_ACCESS_SCOPE)
        return str(self._token.token)


def http_request(
    method: str,
    url: str,
    token: str,
    *,
    body: bytes | None = None,
    content_type: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 300.0,
) -> tuple[int, bytes]:
    """One HTTPS call with a bearer token; returns (status, body) for every HTTP status."""
    all_headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if content_type:
        all_headers["Content-Type"] = content_type
    all_headers.update(headers or {})
    request = urllib.request.Request(  # noqa: S310 - https ARM/SCM URL (or a test's loopback)
        url, data=body, method=method, headers=all_headers
    )
    # No redirect handler: urllib would resend the Authorization header to wherever a 3xx
    # points, even another host. A redirect comes back as its own status instead.
    opener = urllib.request.build_opener(_RefuseRedirects())
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@dataclass
class OneDeployClient:
    """Talks OneDeploy to one app's SCM site; every wait is injectable so tests run fast."""

    scm_url: str
    token_source: Callable[[], str]
    forbidden_retry_delays: Sequence[float] = DEFAULT_FORBIDDEN_RETRY_DELAYS
    storage_retry_delays: Sequence[float] = DEFAULT_STORAGE_RETRY_DELAYS
    poll_interval: float = 3.0
    poll_timeout: float = 900.0
    request_timeout: float = 300.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    notes: list[str] = field(default_factory=list)
    """What happened besides a plain success (retries, an unconfirmed end), for the output."""

    def deploy(self, package: Path) -> str:
        """Publish the zip and wait for the deployment to succeed; returns its id."""
        body = package.read_bytes()
        delays = list(self.storage_retry_delays)
        while True:
            deployment_id = self._publish(body)
            try:
                self._wait(deployment_id)
            except StorageNotYetAuthorizedError as error:
                if not delays:
                    raise
                delay = delays.pop(0)
                self._note(
                    f"deployment {deployment_id or 'latest'} failed on a storage authorization "
                    f"error (new role assignments still propagating, or in a private stack a "
                    f"storage firewall or DNS refusal); publishing again in {delay:.0f} s "
                    f"({error})"
                )
                self.sleep(delay)
                continue
            return deployment_id

    def _note(self, text: str) -> None:
        self.notes.append(text)
        # The engine shows a provider's stderr; the notes output keeps it in the stack state.
        print(f"OneDeploy: {text}", file=sys.stderr, flush=True)

    def _request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        return http_request(
            method,
            self.scm_url.rstrip("/") + path,
            self.token_source(),
            body=body,
            content_type="application/zip" if body is not None else None,
            timeout=self.request_timeout,
        )

    def _publish(self, body: bytes) -> str:
        delays = list(self.forbidden_retry_delays)
        while True:
            status, payload = self._request("POST", PUBLISH_PATH, body)
            if status in (401, 403) and delays:
                # A fresh system identity's role grants take minutes to reach the SCM site.
                self.sleep(delays.pop(0))
                continue
            if status >= 400:
                raise DeploymentError(
                    f"OneDeploy publish to {self.scm_url} failed with HTTP {status}: "
                    f"{_reason(payload)}"
                )
            return _deployment_id(payload)

    def _wait(self, deployment_id: str) -> None:
        path = f"/api/deployments/{deployment_id or 'latest'}"
        deadline = time.monotonic() + self.poll_timeout
        seen = False
        not_found = 0
        while True:
            status, payload = self._request("GET", path)
            if status == 404:
                not_found += 1
                if not_found > NOT_FOUND_TOLERATED:
                    if seen:
                        self._settle_unseen_end(deployment_id)
                        return
                    raise DeploymentError(
                        f"deployment {deployment_id or 'latest'} was accepted by {self.scm_url} "
                        f"but its status answered 404 {not_found} times: {_reason(payload)}"
                    )
                self.sleep(self.poll_interval)
                continue
            not_found = 0
            if status >= 400 and status not in (401, 403):
                raise DeploymentError(
                    f"deployment status {path} answered HTTP {status}: {_reason(payload)}"
                )
            record = _json_object(payload) if status < 400 else {}
            seen = seen or bool(record)
            code = record.get("status")
            if code == STATUS_SUCCESS and record.get("complete", True):
                return
            if isinstance(code, int) and code not in IN_PROGRESS:
                self._raise_failed(deployment_id, code, payload)
            if time.monotonic() >= deadline:
                raise DeploymentError(
                    f"deployment {deployment_id or 'latest'} to {self.scm_url} did not finish "
                    f"within {self.poll_timeout:.0f} s (last status "
                    f"{STATUS_TEXT.get(code, code) if code is not None else status})"
                )
            self.sleep(self.poll_interval)

    def _settle_unseen_end(self, deployment_id: str) -> None:
        """The deployment was seen, then its status went away: ask for the latest deployment,
        and when that is not it either, take it as complete, as azd does."""
        status, payload = self._request("GET", "/api/deployments/latest")
        record = _json_object(payload) if status < 400 else {}
        if record and deployment_id and str(record.get("id", "")) == deployment_id:
            code = record.get("status")
            if code == STATUS_SUCCESS:
                return
            if isinstance(code, int) and code not in IN_PROGRESS:
                self._raise_failed(deployment_id, code, payload)
        self._note(
            f"deployment {deployment_id or 'latest'}: its status answered 404 after it was seen "
            "and the latest deployment does not say how it ended; the deployment worker "
            "recycles when it is done, so it is taken as complete (as azd does)"
        )

    def _raise_failed(self, deployment_id: str, code: int, payload: bytes) -> None:
        reason = _reason(payload)
        message = (
            f"deployment {deployment_id or 'latest'} to {self.scm_url} ended "
            f"{STATUS_TEXT.get(code, code)}: {reason}"
        )
        if code == 3 and _is_storage_forbidden(f"{reason}\n{self._log_text(deployment_id)}"):
            raise StorageNotYetAuthorizedError(message)
        raise DeploymentError(message)

    def _log_text(self, deployment_id: str) -> str:
        """The deployment's log messages (where Flex puts the storage error), or nothing."""
        if not deployment_id:
            return ""
        status, payload = self._request("GET", f"/api/deployments/{deployment_id}/log")
        if status >= 400:
            return ""
        try:
            entries = json.loads(payload.decode("utf-8") or "[]")
        except (UnicodeDecodeError, json.JSONDecodeError):
            return ""
        if not isinstance(entries, list):
            return ""
        return "\n".join(
            str(entry.get("message", "")) for entry in entries if isinstance(entry, dict)
        )


def _is_storage_forbidden(text: str) -> bool:
    return any(
        _STORAGE_WORDS.search(line) and _FORBIDDEN_WORDS.search(line) for line in text.splitlines()
    )


def _json_object(payload: bytes) -> dict[str, Any]:
    try:
        value = json.loads(payload.decode("utf-8") or "null")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _deployment_id(payload: bytes) -> str:
    """Flex answers with the id as text or a JSON string; an empty body means "latest"."""
    text = payload.decode("utf-8", "replace").strip()
    record = _json_object(payload)
    if record:
        return str(record.get("id", ""))
    return text.strip('"')


def _reason(payload: bytes) -> str:
    """The most telling part of an error or status body, kept to one readable line."""
    record = _json_object(payload)
    for key in ("status_text", "message", "Message", "error", "ExceptionMessage"):
        value = record.get(key)
        if isinstance(value, dict):
            value = value.get("message") or json.dumps(value)
        if value:
            extra = f" (log: {record['log_url']})" if record.get("log_url") else ""
            return f"{value}{extra}"
    text = payload.decode("utf-8", "replace").strip()
    return text[:500] or "(empty body)"


class OneDeployProvider(ResourceProvider):
    """CRUD of a code deployment; ``diff`` makes the package hash the only trigger."""

    def __init__(
        self,
        token_source: Callable[[], str] | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.token_source = token_source or CachedTokenSource()
        self.client_options = dict(client_options or {})

    def _deploy(self, props: Mapping[str, Any]) -> dict[str, Any]:
        client = OneDeployClient(props["scm_url"], self.token_source, **self.client_options)
        deployment_id = client.deploy(Path(props["package_path"]))
        return {
            **{key: props[key] for key in INPUT_KEYS},
            "deployment_id": deployment_id,
            "notes": list(client.notes),
        }

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._deploy(props)
        return CreateResult(id_=f"{props['app_name']}:{props['package_sha256'][:16]}", outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in ("package_sha256", "scm_url") if olds.get(key) != news.get(key)]
        return DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._deploy(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to undo: the code goes away with the app (or stays until the next deploy)."""


def trampoline_provider(repo_root: str, module: str, class_name: str) -> ResourceProvider:
    """A provider class defined as ``__main__`` code, so dill pickles it by value.

    Its methods put ``repo_root`` on ``sys.path`` in the provider process and delegate to
    ``module.class_name`` there.
    """

    def _real(self: Any) -> ResourceProvider:
        import importlib
        import sys

        if self.repo_root not in sys.path:
            sys.path.insert(0, self.repo_root)
        return getattr(importlib.import_module(self.module), self.class_name)()

    def _init(self: Any, root: str, module_name: str, name: str) -> None:
        self.repo_root, self.module, self.class_name = root, module_name, name

    namespace = {
        "__module__": "__main__",
        "__init__": _init,
        "_real": _real,
        "create": lambda self, props: self._real().create(props),
        "diff": lambda self, id_, olds, news: self._real().diff(id_, olds, news),
        "update": lambda self, id_, olds, news: self._real().update(id_, olds, news),
        "delete": lambda self, id_, props: self._real().delete(id_, props),
    }
    trampoline = type(f"{class_name}Trampoline", (ResourceProvider,), namespace)
    return trampoline(repo_root, module, class_name)


class FunctionCodeDeployment(pulumi.dynamic.Resource):
    """The deployed code of one Function App, keyed by the package's SHA-256."""

    deployment_id: pulumi.Output[str]
    package_sha256: pulumi.Output[str]
    notes: pulumi.Output[list[str]]
    """Retries and unconfirmed ends of the last deployment (empty when it simply succeeded)."""

    def __init__(
        self,
        name: str,
        *,
        app_name: pulumi.Input[str],
        scm_url: pulumi.Input[str],
        package_path: str,
        package_sha256: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            trampoline_provider(REPO_ROOT, __name__, OneDeployProvider.__name__),
            name,
            {
                "app_name": app_name,
                "scm_url": scm_url,
                "package_path": package_path,
                "package_sha256": package_sha256,
                "deployment_id": None,
                "notes": None,
            },
            opts,
        )
