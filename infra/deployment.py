"""Code deployment inside ``pulumi up``: push the package zip to a Flex Consumption app with
OneDeploy, from a Pulumi dynamic provider.

pulumi-azure-native has no OneDeploy resource, and Flex Consumption rejects zipdeploy and
WEBSITE_RUN_FROM_PACKAGE. The provider POSTs the zip to ``<scm>/api/publish`` with an Entra
bearer token, then polls ``<scm>/api/deployments/<id>`` until the deployment ends, because the
publish call can answer 200/202 for a deployment that fails later. A 401/403 right after the
app and its role assignments were created is expected while RBAC propagates, so those are
retried with backoff. The resource's only change trigger is the package's SHA-256: same hash,
no redeploy.

The dynamic provider process does not share this program's ``sys.path``, so the registered
provider is a small trampoline pickled by value; it puts the repository root back on the path
and delegates to :class:`OneDeployProvider` here.
"""

from __future__ import annotations

import json
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
INPUT_KEYS = ("app_name", "scm_url", "package_path", "package_sha256")


class DeploymentError(RuntimeError):
    """OneDeploy refused or failed the package; the message carries the service's reason."""


def default_token_source() -> str:
    """An Entra access token for the SCM site from whatever identity is logged in."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential().get_token(SCM_ACCESS_SCOPE).token


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
    poll_interval: float = 3.0
    poll_timeout: float = 900.0
    request_timeout: float = 300.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def deploy(self, package: Path) -> str:
        """Publish the zip and wait for the deployment to succeed; returns its id."""
        body = package.read_bytes()
        deployment_id = self._publish(body)
        self._wait(deployment_id)
        return deployment_id

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
        while True:
            status, payload = self._request("GET", path)
            if status >= 400 and status not in (401, 403, 404):
                raise DeploymentError(
                    f"deployment status {path} answered HTTP {status}: {_reason(payload)}"
                )
            record = _json_object(payload) if status < 400 else {}
            code = record.get("status")
            if code == STATUS_SUCCESS and record.get("complete", True):
                return
            if isinstance(code, int) and code not in IN_PROGRESS:
                raise DeploymentError(
                    f"deployment {deployment_id or 'latest'} to {self.scm_url} ended "
                    f"{STATUS_TEXT.get(code, code)}: {_reason(payload)}"
                )
            if time.monotonic() >= deadline:
                raise DeploymentError(
                    f"deployment {deployment_id or 'latest'} to {self.scm_url} did not finish "
                    f"within {self.poll_timeout:.0f} s (last status "
                    f"{STATUS_TEXT.get(code, code) if code is not None else status})"
                )
            self.sleep(self.poll_interval)


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
        self.token_source = token_source or default_token_source
        self.client_options = dict(client_options or {})

    def _deploy(self, props: Mapping[str, Any]) -> dict[str, Any]:
        client = OneDeployClient(props["scm_url"], self.token_source, **self.client_options)
        deployment_id = client.deploy(Path(props["package_path"]))
        return {**{key: props[key] for key in INPUT_KEYS}, "deployment_id": deployment_id}

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
            },
            opts,
        )
