"""infra/__main__.py as Pulumi runs it: from infra/ as the program directory, without the
repository on sys.path, turning a config error into one line without a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

INFRA = Path(__file__).resolve().parents[2] / "infra"

SCRIPT = """
import runpy, sys
import pulumi
from pulumi.runtime import settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.mocks import _sync_await
from pulumi.runtime.stack import run_pulumi_func

from pathlib import Path
repo = Path.cwd().parent
# `make install` puts the repository on the venv's path (acs_call_recording.pth); a Pulumi run
# may use an interpreter without it, which is the case this test is about.
sys.path[:] = [e for e in sys.path if Path(e or ".").resolve() not in (repo, repo / "functions")]
assert not any(Path(entry or ".").resolve() == repo for entry in sys.path), sys.path

class Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args):
        arm_id = f"/subscriptions/s/resourceGroups/g/providers/P/t/{args.name}"
        return arm_id, {**args.inputs, "name": args.name}
    def call(self, args):
        raise NotImplementedError(args.token)

for cool in sys.argv[1:]:
    settings.set_root_resource(None)
    pulumi.runtime.set_mocks(Mocks(), project="acs-call-recording", stack="dev", preview=True)
    set_all_config({"acs-call-recording:deployCode": "false",
                    "acs-call-recording:coolAfterDays": cool})
    try:
        _sync_await(run_pulumi_func(lambda: runpy.run_path("__main__.py", run_name="__main__")))
        print("registered", "infra.program" in sys.modules)
    except pulumi.RunError as error:
        print(f"RunError: {error}")
"""


def test_main_runs_from_the_program_directory_and_reports_config_errors_in_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-P", "-c", SCRIPT, "30", "200"],
        cwd=INFRA, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "registered True",
        "RunError: configuration error: "
        "coolAfterDays (200) must be less than archiveAfterDays (180)",
    ]
