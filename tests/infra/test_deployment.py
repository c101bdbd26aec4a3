"""The OneDeploy dynamic provider and the immutability lock, over real HTTP to a local stand-in."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from pulumi.dynamic.dynamic import serialize_provider

from infra import deployment
from infra.deployment import (
    PUBLISH_PATH,
    REPO_ROOT,
    DeploymentError,
    OneDeployProvider,
    trampoline_provider,
)
from infra.immutability_lock import ImmutabilityLockError, ImmutabilityLockProvider
from tests.infra.fake_scm import Answer, FakeScm
from tests.support.http_server import LocalHttpServer

TOKEN = "test-token-not-a-secret"


def _zip(tmp_path: Path, name: str, content: str) -> tuple[Path, str]:
    import hashlib

    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo("host.json", (1980, 1, 1, 0, 0, 0)), content)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def _provider(sleeps: list[float], **options: Any) -> OneDeployProvider:
    return OneDeployProvider(
        token_source=lambda: TOKEN,
        client_options={
            "sleep": sleeps.append,
            "poll_interval": 0.25,
            "forbidden_retry_delays": (1.0, 2.0, 4.0),
            **options,
        },
    )


def _props(fake: FakeScm, package: Path, sha: str) -> dict[str, Any]:
    return {
        "app_name": "func-x",
        "scm_url": fake.url,
        "package_path": str(package),
        "package_sha256": sha,
    }


def _posts(fake: FakeScm) -> list:
    return [r for r in fake.requests if r.method == "POST"]


def test_create_publishes_the_zip_with_a_bearer_token_and_polls_to_success(
    fake_scm: FakeScm, tmp_path: Path
) -> None:
    package, sha = _zip(tmp_path, "a.zip", "{}")
    fake_scm.script("POST", "/api/publish", Answer(202, '"dep-1"'))
    fake_scm.script(
        "GET", "/api/deployments/dep-1",
        Answer(200, {"id": "dep-1", "status": 1, "complete": False}),
        Answer(200, {"id": "dep-1", "status": 2, "complete": False}),
        Answer(200, {"id": "dep-1", "status": 4, "complete": True}),
    )  # fmt: skip
    sleeps: list[float] = []
    result = _provider(sleeps).create(_props(fake_scm, package, sha))

    assert result.outs["deployment_id"] == "dep-1"
    assert result.outs["package_sha256"] == sha
    assert result.id == f"func-x:{sha[:16]}"
    (publish,) = _posts(fake_scm)
    assert publish.path == PUBLISH_PATH
    assert publish.headers["Authorization"] == f"Bearer {TOKEN}"
    assert publish.headers["Content-Type"] == "application/zip"
    assert publish.body == package.read_bytes()
    polls = [r.path for r in fake_scm.requests if r.method == "GET"]
    assert polls == ["/api/deployments/dep-1"] * 3
    assert sleeps == [0.25, 0.25]


def test_same_hash_is_a_no_op_and_a_new_hash_redeploys(fake_scm: FakeScm, tmp_path: Path) -> None:
    first, first_sha = _zip(tmp_path, "a.zip", "{}")
    second, second_sha = _zip(tmp_path, "b.zip", '{"version": "2.0"}')
    provider = _provider([])
    olds = {**_props(fake_scm, first, first_sha), "deployment_id": "dep-1"}

    same = provider.diff("id", olds, _props(fake_scm, tmp_path / "elsewhere.zip", first_sha))
    assert same.changes is False
    assert fake_scm.requests == []

    changed = provider.diff("id", olds, _props(fake_scm, second, second_sha))
    assert changed.changes is True and not changed.replaces
    fake_scm.script("POST", "/api/publish", Answer(200, {"id": "dep-2"}))
    fake_scm.script("GET", "/api/deployments/dep-2", Answer(200, {"status": 4, "complete": True}))
    result = provider.update("id", olds, _props(fake_scm, second, second_sha))
    assert result.outs["deployment_id"] == "dep-2"
    assert result.outs["package_sha256"] == second_sha
    assert [r.body for r in _posts(fake_scm)] == [second.read_bytes()]


def test_a_200_publish_whose_deployment_fails_is_an_error_with_the_reason(
    fake_scm: FakeScm, tmp_path: Path
) -> None:
    package, sha = _zip(tmp_path, "a.zip", "{}")
    fake_scm.script("POST", "/api/publish", Answer(200, '"dep-3"'))
    fake_scm.script(
        "GET", "/api/deployments/dep-3",
        Answer(200, {"status": 3, "complete": True, "status_text": "Failed to sync triggers",
                     "log_url": "https://scm/api/deployments/dep-3/log"}),
    )  # fmt: skip
    with pytest.raises(DeploymentError) as caught:
        _provider([]).create(_props(fake_scm, package, sha))
    message = str(caught.value)
    assert "ended Failed: Failed to sync triggers" in message
    assert "log: https://scm/api/deployments/dep-3/log" in message


def test_a_rejected_publish_is_an_error_with_the_body_reason(
    fake_scm: FakeScm, tmp_path: Path
) -> None:
    package, sha = _zip(tmp_path, "a.zip", "{}")
    fake_scm.script("POST", "/api/publish", Answer(400, {"Message": "Package is not a zip"}))
    with pytest.raises(DeploymentError, match=r"HTTP 400: Package is not a zip$"):
        _provider([]).create(_props(fake_scm, package, sha))
    assert len(_posts(fake_scm)) == 1


def test_403_is_retried_with_backoff_while_roles_propagate(
    fake_scm: FakeScm, tmp_path: Path
) -> None:
    package, sha = _zip(tmp_path, "a.zip", "{}")
    fake_scm.script(
        "POST", "/api/publish",
        Answer(403, {"Message": "Forbidden"}), Answer(401, ""), Answer(202, '"dep-4"'),
    )  # fmt: skip
    fake_scm.script("GET", "/api/deployments/dep-4", Answer(200, {"status": 4, "complete": True}))
    sleeps: list[float] = []
    result = _provider(sleeps).create(_props(fake_scm, package, sha))
    assert result.outs["deployment_id"] == "dep-4"
    assert len(_posts(fake_scm)) == 3
    assert sleeps == [1.0, 2.0]


def test_403_that_never_clears_ends_with_the_service_reason(
    fake_scm: FakeScm, tmp_path: Path
) -> None:
    package, sha = _zip(tmp_path, "a.zip", "{}")
    fake_scm.script("POST", "/api/publish", Answer(403, {"Message": "Caller is not authorized"}))
    sleeps: list[float] = []
    with pytest.raises(DeploymentError, match="HTTP 403: Caller is not authorized"):
        _provider(sleeps).create(_props(fake_scm, package, sha))
    assert sleeps == [1.0, 2.0, 4.0]
    assert len(_posts(fake_scm)) == 4


def test_a_deployment_that_never_finishes_times_out(fake_scm: FakeScm, tmp_path: Path) -> None:
    package, sha = _zip(tmp_path, "a.zip", "{}")
    fake_scm.script("POST", "/api/publish", Answer(202, '"dep-5"'))
    fake_scm.script("GET", "/api/deployments/dep-5", Answer(200, {"status": 1, "complete": False}))
    with pytest.raises(
        DeploymentError, match=r"did not finish within 0 s \(last status Building\)"
    ):
        _provider([], poll_timeout=0.0).create(_props(fake_scm, package, sha))


STORAGE_403 = (
    "Failed to upload because Azure Storage responded with Forbidden : Response status code "
    "does not indicate success: 403 (This request is not authorized to perform this operation.)"
)


def _storage_provider(sleeps: list[float], **options: Any) -> OneDeployProvider:
    return _provider(sleeps, storage_retry_delays=(30.0, 60.0), **options)


def test_a_deployment_failed_on_a_storage_403_is_published_again_and_reported(
    fake_scm: FakeScm, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """First deployments race the app identity's new role on the deployment container."""
    package, sha = _zip(tmp_path, "a.zip", "{}")
    fake_scm.script("POST", "/api/publish", Answer(202, '"dep-6"'), Answer(202, '"dep-7"'))
    fake_scm.script(
        "GET", "/api/deployments/dep-6",
        Answer(200, {"status": 3, "complete": True, "status_text": STORAGE_403}),
    )  # fmt: skip
    fake_scm.script("GET", "/api/deployments/dep-7", Answer(200, {"status": 4, "complete": True}))
    sleeps: list[float] = []
    result = _storage_provider(sleeps).create(_props(fake_scm, package, sha))

    assert result.outs["deployment_id"] == "dep-7"
    assert [r.body for r in _posts(fake_scm)] == [package.read_bytes()] * 2
    assert sleeps == [30.0]
    (note,) = result.outs["notes"]
    assert note.startswith("deployment dep-6 failed on a storage authorization error")
    # Neutral about the cause: propagation, or a private stack's firewall or DNS.
    assert "role assignments still propagating" in note
    assert "storage firewall or DNS refusal" in note
    assert "publishing again in 30 s" in note
    assert f"OneDeploy: {note}" in capsys.readouterr().err


def test_a_storage_403_found_only_in_the_deployment_log_is_retried(
    fake_scm: FakeScm, tmp_path: Path
) -> None:
    package, sha = _zip(tmp_path, "a.zip", "{}")
    fake_scm.script("POST", "/api/publish", Answer(202, '"dep-8"'), Answer(202, '"dep-9"'))
    fake_scm.script(
        "GET", "/api/deployments/dep-8/log",
        Answer(200, [{"message": "Starting deployment"}, {"message": STORAGE_403}]),
    )  # fmt: skip
    fake_scm.script(
        "GET", "/api/deployments/dep-8",
        Answer(200, {"status": 3, "complete": True, "status_text": "Deployment failed"}),
    )  # fmt: skip
    fake_scm.script("GET", "/api/deployments/dep-9", Answer(200, {"status": 4, "complete": True}))
    result = _storage_provider([]).create(_props(fake_scm, package, sha))
    assert result.outs["deployment_id"] == "dep-9"
    assert len(_posts(fake_scm)) == 2


def test_storage_403s_that_never_clear_end_with_the_reason_after_the_last_retry(
    fake_scm: FakeScm, tmp_path: Path
) -> None:
    package, sha = _zip(tmp_path, "a.zip", "{}")
    fake_scm.script("POST", "/api/publish", Answer(202, '"dep-10"'))
    fake_scm.script(
        "GET", "/api/deployments/dep-10",
        Answer(200, {"status": 3, "complete": True, "status_text": STORAGE_403}),
    )  # fmt: skip
    sleeps: list[float] = []
    with pytest.raises(DeploymentError, match=r"ended Failed: Failed to upload because Azure"):
        _storage_provider(sleeps).create(_props(fake_scm, package, sha))
    assert sleeps == [30.0, 60.0]
    assert len(_posts(fake_scm)) == 3


#: The lines every Flex deployment log has, before whatever ended it.
FLEX_LOG_PREAMBLE = [
    {"message": "Starting deployment pipeline."},
    {"message": "[DeploymentStorageValidation] starting."},
    {"message": "Created blob uri: https://acsrechost.blob.core.windows.net/app-package/x.zip"},
    {"message": "Blob uploaded. Package size 41 MB."},
]


@pytest.mark.parametrize(
    "ending",
    [
        "Sync triggers failed: ARM answered 403 Forbidden for sites/x/syncfunctiontriggers",
        "ModuleNotFoundError: No module named 'fastapi'",
    ],
)
def test_a_failure_that_is_not_about_storage_is_not_published_again(
    fake_scm: FakeScm, tmp_path: Path, ending: str
) -> None:
    """A real Flex log names its package blob on some line and may carry an unrelated 403: only
    a line that says both storage and forbidden is a storage authorization failure."""
    package, sha = _zip(tmp_path, "a.zip", "{}")
    fake_scm.script("POST", "/api/publish", Answer(202, '"dep-11"'))
    fake_scm.script(
        "GET", "/api/deployments/dep-11/log",
        Answer(200, [*FLEX_LOG_PREAMBLE, {"message": ending}]),
    )  # fmt: skip
    fake_scm.script(
        "GET", "/api/deployments/dep-11",
        Answer(200, {"status": 3, "complete": True, "status_text": "Deployment failed"}),
    )  # fmt: skip
    sleeps: list[float] = []
    with pytest.raises(DeploymentError, match="ended Failed: Deployment failed") as caught:
        _storage_provider(sleeps).create(_props(fake_scm, package, sha))
    assert not isinstance(caught.value, deployment.StorageNotYetAuthorizedError)
    assert sleeps == []
    assert len(_posts(fake_scm)) == 1


def test_a_brief_404_after_the_deployment_was_seen_is_waited_out(
    fake_scm: FakeScm, tmp_path: Path
) -> None:
    """azd waits out four 404s whether or not the deployment was seen: one in the middle of a
    deployment must not turn a failure into a success."""
    package, sha = _zip(tmp_path, "a.zip", "{}")
    fake_scm.script("POST", "/api/publish", Answer(202, '"dep-12"'))
    fake_scm.script(
        "GET", "/api/deployments/dep-12",
        Answer(200, {"status": 1, "complete": False}),
        Answer(404, "Deployment dep-12 not found"),
        Answer(200, {"status": 3, "complete": True, "status_text": "Oryx build failed"}),
    )  # fmt: skip
    with pytest.raises(DeploymentError, match="ended Failed: Oryx build failed"):
        _provider([]).create(_props(fake_scm, package, sha))


def test_404s_that_persist_after_the_deployment_was_seen_are_settled_by_the_latest(
    fake_scm: FakeScm, tmp_path: Path
) -> None:
    package, sha = _zip(tmp_path, "a.zip", "{}")
    fake_scm.script("POST", "/api/publish", Answer(202, '"dep-15"'), Answer(202, '"dep-16"'))
    fake_scm.script(
        "GET", "/api/deployments/latest",
        Answer(200, {"id": "dep-15", "status": 3, "status_text": "Failed to sync triggers"}),
        Answer(404, "no deployments"),
    )  # fmt: skip
    fake_scm.script(
        "GET", "/api/deployments/dep-15",
        Answer(200, {"status": 2, "complete": False}), Answer(404, "Deployment not found"),
    )  # fmt: skip
    fake_scm.script(
        "GET", "/api/deployments/dep-16",
        Answer(200, {"status": 2, "complete": False}), Answer(404, "Deployment not found"),
    )  # fmt: skip
    with pytest.raises(DeploymentError, match="ended Failed: Failed to sync triggers"):
        _provider([]).create(_props(fake_scm, package, sha))
    # The latest deployment says nothing of this one: complete, as azd takes it, with a note.
    result = _provider([]).create(_props(fake_scm, package, sha))
    assert result.outs["deployment_id"] == "dep-16"
    assert "taken as complete" in result.outs["notes"][0]
    statuses = [r.path for r in fake_scm.requests if r.path == "/api/deployments/dep-16"]
    assert len(statuses) == 1 + 5


def test_404s_before_the_deployment_is_seen_are_waited_out_then_refused(
    fake_scm: FakeScm, tmp_path: Path
) -> None:
    package, sha = _zip(tmp_path, "a.zip", "{}")
    fake_scm.script("POST", "/api/publish", Answer(202, '"dep-13"'), Answer(202, '"dep-14"'))
    fake_scm.script(
        "GET", "/api/deployments/dep-13",
        *[Answer(404, "not yet")] * 4, Answer(200, {"status": 4, "complete": True}),
    )  # fmt: skip
    fake_scm.script("GET", "/api/deployments/dep-14", Answer(404, "Deployment not found"))
    assert _provider([]).create(_props(fake_scm, package, sha)).outs["notes"] == []
    with pytest.raises(DeploymentError, match=r"status answered 404 5 times: Deployment not found"):
        _provider([]).create(_props(fake_scm, package, sha))


def test_the_registered_provider_runs_where_the_program_is_not_importable(tmp_path: Path) -> None:
    """The engine runs dynamic providers in their own process; the pickle must carry itself."""
    serialized = serialize_provider(
        trampoline_provider(REPO_ROOT, "infra.deployment", "OneDeployProvider")
    )
    script = (
        "import base64, sys, dill\n"
        "provider = dill.loads(base64.b64decode(sys.stdin.read()))\n"
        "assert 'infra' not in sys.modules\n"
        "same = provider.diff('id', {'package_sha256': 'a'}, {'package_sha256': 'a'})\n"
        "new = provider.diff('id', {'package_sha256': 'a'}, {'package_sha256': 'b'})\n"
        "print(same.changes, new.changes)\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", script],
        input=serialized, capture_output=True, text=True, cwd=tmp_path, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False True"


POLICY_ID = (
    "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/a"
    "/blobServices/default/containers/recordings/immutabilityPolicies/default"
)


def test_lock_posts_the_etag_and_requires_a_locked_answer(fake_scm: FakeScm) -> None:
    fake_scm.script("POST", f"{POLICY_ID}/lock", Answer(200, {"properties": {"state": "Locked"}}))
    provider = ImmutabilityLockProvider(token_source=lambda: TOKEN, arm_endpoint=fake_scm.url)
    result = provider.create({"policy_id": POLICY_ID, "etag": '"0x8D"'})
    assert result.outs["state"] == "Locked"
    (request,) = fake_scm.requests
    assert request.path == f"{POLICY_ID}/lock?api-version=2023-05-01"
    assert request.headers["If-Match"] == '"0x8D"'
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_lock_refused_by_arm_is_an_error_with_its_message(fake_scm: FakeScm) -> None:
    fake_scm.script(
        "POST", f"{POLICY_ID}/lock",
        Answer(412, {"error": {"code": "ConditionNotMet", "message": "ETag mismatch"}}),
    )  # fmt: skip
    provider = ImmutabilityLockProvider(token_source=lambda: TOKEN, arm_endpoint=fake_scm.url)
    with pytest.raises(ImmutabilityLockError, match="HTTP 412: ETag mismatch"):
        provider.create({"policy_id": POLICY_ID, "etag": '"stale"'})


def test_the_bearer_token_never_follows_a_redirect(tmp_path: Path) -> None:
    """A 3xx to another host must not carry the deployment token there."""
    seen: list[str | None] = []

    class Redirecting(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            if self.path == "/start":
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/other")
                self.end_headers()
                return
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    with LocalHttpServer(Redirecting) as server:
        url = f"{server.base_url}/start"
        status, _ = deployment.http_request("GET", url, "secret-token", timeout=5)
    assert status == 302
    assert seen == ["Bearer secret-token"]
