"""scripts/scan.py: Checkov's findings judged against the accepted ones (a stand-in Checkov
prints the reports, so no scanner is needed here; `make scan` runs the real one)."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from scripts import scan

README = Path(__file__).resolve().parents[2] / "README.md"


def _report(*failed: tuple[str, str]) -> dict:
    return {
        "check_type": "arm",
        "results": {
            "failed_checks": [
                {"check_id": check, "resource": resource, "check_name": f"title of {check}"}
                for check, resource in failed
            ]
        },
    }


@pytest.mark.parametrize(
    ("resource", "role"),
    [
        ("Microsoft.Storage/storageAccounts.acsrecarch4fec68de", "archive account"),
        ("Microsoft.Storage/storageAccounts.acsrecingr0b7c1d2e", "ingress account"),
        ("Microsoft.Storage/storageAccounts.acsrechost39b4f7b8", "runtime account"),
        ("Microsoft.Web/sites.acsrec-func7ee1d1b6", "function app"),
        ("Microsoft.Web/serverfarms.acsrec-func-plan6ca01a40", "plan"),
        ("Microsoft.Network/privateDnsZones.privatelink.blob.core.windows.net",
         "Microsoft.Network/privateDnsZones.privatelink.blob.core.windows.net"),
    ],
)  # fmt: skip
def test_role_of_a_checkov_resource(resource: str, role: str) -> None:
    assert scan.role_of(resource) == role


def test_accepted_findings_are_per_stack_and_resource() -> None:
    ingress = "Microsoft.Storage/storageAccounts.acsrecingr1"
    archive = "Microsoft.Storage/storageAccounts.acsrecarch1"
    found = scan.findings("private", _report(("CKV_AZURE_59", ingress), ("CKV_AZURE_59", archive)))
    # Only the ingress account may keep its public endpoint in a private stack.
    assert [f.reason is not None for f in found] == [True, False]
    assert str(found[1]).startswith(f"NEW private CKV_AZURE_59 {archive}")
    # The same check on the same account is accepted in the public stack only.
    [public] = scan.findings("public", _report(("CKV_AZURE_35", archive)))
    [private] = scan.findings("private", _report(("CKV_AZURE_35", archive)))
    assert public.reason is not None and private.reason is None


def _fake_checkov(tmp_path: Path, reports: dict[str, dict]) -> str:
    """An executable that prints the report of the template it is given (by file name)."""
    data = tmp_path / "reports.json"
    data.write_text(json.dumps(reports))
    script = tmp_path / "checkov"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, pathlib, sys\n"
        "template = pathlib.Path(sys.argv[sys.argv.index('-f') + 1]).name\n"
        f"print(json.dumps(json.loads(pathlib.Path({str(data)!r}).read_text())[template]))\n"
        "sys.exit(1)\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_scan_passes_on_accepted_findings_and_fails_on_a_new_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    exported: list[list[str]] = []

    def export(argv: list[str]) -> int:  # the export itself: tests/infra/test_arm_export.py
        exported.append(argv)
        out = Path(argv[argv.index("--out") + 1])
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("{}")
        return 0

    monkeypatch.setattr(scan.arm_export, "main", export)
    site = "Microsoft.Web/sites.acsrec-func1"
    vnet = "Microsoft.Network/virtualNetworks.acsrec-net-vnet1"
    accepted = {"arm-public.json": _report(("CKV_AZURE_213", site)),
                "arm-private.json": _report(("CKV_AZURE_213", site))}  # fmt: skip
    argv = ["--out-dir", str(tmp_path / "out")]
    assert scan.main(["--checkov", _fake_checkov(tmp_path, accepted), *argv]) == 0
    assert [argv[1] for argv in exported] == ["public", "private"]
    new = {**accepted, "arm-private.json": _report(("CKV_AZURE_183", vnet))}
    assert scan.main(["--checkov", _fake_checkov(tmp_path, new), *argv]) == 1
    out = capsys.readouterr().out.splitlines()
    assert f"NEW private CKV_AZURE_183 {vnet} (title of CKV_AZURE_183)" in out
    assert out[-1] == "scan: 2 finding(s), 1 accepted, 1 new"


def test_readme_holds_the_accepted_findings_table() -> None:
    text = README.read_text(encoding="utf-8")
    assert scan.START_MARKER in text, "paste `python -m scripts.scan --table` into README.md"
    between = text.split(scan.START_MARKER, 1)[1].split(scan.END_MARKER, 1)[0]
    assert between.strip("\n") == scan.render_table().strip("\n")
