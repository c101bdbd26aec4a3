"""Run Checkov over ARM exports of the public and the private stack (scripts/arm_export.py) and
fail on any finding the project has not accepted (:data:`ACCEPTED`, the README's table).

Usage (``make scan`` installs Checkov in its own virtualenv and runs this)::

    python -m scripts.scan --checkov .scan-venv/bin/checkov --out-dir dist/scan

One line per failed check: ``ACCEPTED`` with the reason, or ``NEW``; exit 0 when every finding
is accepted, 1 when one is not, 2 when Checkov could not run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts import arm_export

#: The stacks scanned: ``network`` and the rest of their config.
STACKS: dict[str, dict[str, Any]] = {
    "public": {},
    "private": {
        "zoneRedundant": True,
        "location": "swedencentral",
        "apiAllowedIpRanges": ["198.51.100.0/24"],
        "apiAllowedServiceTags": ["AzureCloud"],
    },
}
_FLEX_FTP = (
    "checks siteConfig.ftpsState, which ARM refuses on Flex Consumption sites (error 51021); "
    "Flex has no FTP endpoint and basic publishing credentials are off (ftp and scm "
    "basicPublishingCredentialsPolicies allow: false)"
)
_PUBLIC_API = (
    "the recording API must answer ACS's state callbacks, which come from Azure's public cloud "
    "to a public endpoint, and the app backend; access is the function key and ACS's signed "
    "JWT, optionally narrowed by apiAllowedIpRanges/apiAllowedServiceTags"
)
_CLIENT_CERTS = (
    "ACS presents no client certificate with its callbacks; callers authenticate with the "
    "function key, callbacks with ACS's signed JWT"
)
_INSTANCES = (
    "Flex Consumption scales instances on demand (there is no worker count); with zoneRedundant "
    "the platform spreads them over zones; always-ready instances would bill around the clock"
)
_HEALTH = (
    "Flex Consumption has no platform health check (Azure Monitor Baseline Alerts exclude "
    "HealthCheckStatus for FlexConsumption), so healthCheckPath is not sent; GET /api/health "
    "serves the smoke test and external probes"
)
_RUNTIME_REPLICATION = (
    "the runtime account holds only host state and the deployment package, both rebuilt by "
    "pulumi up; it is ZRS with zoneRedundant, and geo-replication without the app in the "
    "paired region would buy nothing"
)
_PUBLIC_STORAGE = (
    "network: public keeps the public endpoints reachable (Entra ID only, shared keys off, "
    "least-privilege roles); network: private closes them"
)
_INGRESS_TRUSTED = (
    "Event Grid must deliver to the events queue and dead-letter into this account; behind a "
    "firewall that works only through the trusted-services exception with the topic's system "
    "identity (Azure Event Grid, 'Storage queue as an event handler'), so this account alone "
    "keeps publicNetworkAccess Enabled with defaultAction Deny, no IP or VNet rule and bypass "
    "AzureServices; it holds no media, only event notifications and dead letters, and the app "
    "reaches it through private endpoints"
)
_NO_BYPASS = (
    "bypass None on purpose: publicNetworkAccess is Disabled and no Azure service needs this "
    "account (Event Grid writes to the ingress account; Microsoft's Flex VNet sample does the "
    "same for the host's account); the check's aim, letting platform services through a "
    "firewall, does not apply"
)
_INGRESS_REPLICATION = (
    "the ingress account holds events in flight (a week at most) and dead letters that expire "
    "after deadLetterRetentionDays; the recordings they point at stay in ACS for 24 hours, so "
    "a paired-region copy would outlive what it could fetch; it is ZRS with zoneRedundant"
)

#: (stack, check id, resource role) -> why the finding is accepted.
ACCEPTED: dict[tuple[str, str, str], str] = {
    **{
        (stack, check, "function app"): reason
        for stack in STACKS
        for check, reason in (
            ("CKV_AZURE_78", _FLEX_FTP),
            ("CKV_AZURE_222", _PUBLIC_API),
            ("CKV_AZURE_17", _CLIENT_CERTS),
            ("CKV_AZURE_212", _INSTANCES),
            ("CKV_AZURE_213", _HEALTH),
        )
    },
    **{(stack, "CKV_AZURE_206", "runtime account"): _RUNTIME_REPLICATION for stack in STACKS},
    **{(stack, "CKV_AZURE_206", "ingress account"): _INGRESS_REPLICATION for stack in STACKS},
    **{
        ("public", check, role): _PUBLIC_STORAGE
        for check in ("CKV_AZURE_59", "CKV_AZURE_35", "CKV_AZURE_36")
        for role in ("archive account", "ingress account", "runtime account")
    },
    ("public", "CKV_AZURE_225", "plan"): (
        "zoneRedundant is off by default (not every Flex region has zones, and it may keep "
        "instances warm); the private example stack turns it on"
    ),
    ("private", "CKV_AZURE_59", "ingress account"): _INGRESS_TRUSTED,
    ("private", "CKV_AZURE_36", "archive account"): _NO_BYPASS,
    ("private", "CKV_AZURE_36", "runtime account"): _NO_BYPASS,
}


START_MARKER = "<!-- scan-table:start -->"
END_MARKER = "<!-- scan-table:end -->"


#: Checkov's titles of the accepted checks (for the README table).
CHECK_TITLES = {
    "CKV_AZURE_17": "web app requires client certificates",
    "CKV_AZURE_35": "storage firewall denies by default",
    "CKV_AZURE_36": "storage firewall lets trusted Microsoft services through",
    "CKV_AZURE_59": "storage disallows public network access",
    "CKV_AZURE_78": "FTP deployments disabled (ftpsState)",
    "CKV_AZURE_206": "storage uses geo-replication",
    "CKV_AZURE_212": "minimum number of instances for failover",
    "CKV_AZURE_213": "health check configured",
    "CKV_AZURE_222": "web app public network access disabled",
    "CKV_AZURE_225": "App Service plan zone redundant",
}


def render_table() -> str:
    """The README's table of accepted findings: one row per check, resource and reason."""
    rows: dict[tuple[str, str, str], list[str]] = {}
    for (stack, check, role), reason in ACCEPTED.items():
        rows.setdefault((check, role, reason), []).append(stack)
    lines = [
        "| Checkov check | resource | stacks | why it is accepted |",
        "|---|---|---|---|",
    ]
    for (check, role, reason), stacks in sorted(rows.items()):
        lines.append(f"| {check} {CHECK_TITLES[check]} | {role} | {', '.join(stacks)} | {reason} |")
    return "\n".join(lines) + "\n"


def role_of(resource: str) -> str:
    """The part a Checkov resource (``<ARM type>.<name>``) plays in the solution."""
    # The type's namespace has a dot of its own (Microsoft.Web/sites.<name>).
    split = resource.find(".", resource.find("/"))
    arm_type, name = resource[:split], resource[split + 1 :]
    if arm_type == "Microsoft.Storage/storageAccounts":
        for fragment, role in (("arch", "archive account"), ("ingr", "ingress account")):
            if fragment in name:
                return role
        return "runtime account"
    if arm_type == "Microsoft.Web/sites":
        return "function app"
    if arm_type == "Microsoft.Web/serverfarms":
        return "plan"
    return resource


@dataclass(frozen=True)
class Finding:
    stack: str
    check_id: str
    resource: str
    title: str

    @property
    def reason(self) -> str | None:
        return ACCEPTED.get((self.stack, self.check_id, role_of(self.resource)))

    def __str__(self) -> str:
        head = f"{self.stack} {self.check_id} {self.resource} ({self.title})"
        return f"ACCEPTED {head}: {self.reason}" if self.reason else f"NEW {head}"


def findings(stack: str, report: Mapping[str, Any] | list[Any]) -> list[Finding]:
    """Failed checks of one Checkov JSON report (``-o json``)."""
    reports = report if isinstance(report, list) else [report]
    return [
        Finding(stack, failed["check_id"], failed["resource"], failed["check_name"])
        for one in reports
        for failed in one.get("results", {}).get("failed_checks", [])
    ]


def run_checkov(checkov: str, template: Path) -> Mapping[str, Any] | list[Any]:
    result = subprocess.run(
        [checkov, "--framework", "arm", "-f", str(template), "--quiet", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode not in (0, 1):
        raise RuntimeError(f"checkov exited {result.returncode}: {result.stderr.strip()[-500:]}")
    return json.loads(result.stdout)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.scan", description=__doc__)
    parser.add_argument("--checkov", help="path of the checkov executable")
    parser.add_argument("--out-dir", type=Path, default=Path("dist/scan"))
    parser.add_argument(
        "--table", action="store_true", help="print the README's accepted-findings table"
    )
    args = parser.parse_args(argv)
    if args.table:
        sys.stdout.write(render_table())
        return 0
    if not args.checkov:
        parser.error("--checkov is required (make scan installs it)")
    found: list[Finding] = []
    for stack, config in STACKS.items():
        template = args.out_dir / f"arm-{stack}.json"
        arm_export.main(
            ["--network", stack, "--config", json.dumps(config), "--out", str(template)]
        )
        try:
            found += findings(stack, run_checkov(args.checkov, template))
        except (OSError, RuntimeError, json.JSONDecodeError) as error:
            print(f"scan: {error}", file=sys.stderr)
            return 2
    for finding in found:
        print(finding)
    new = [f for f in found if f.reason is None]
    print(f"scan: {len(found)} finding(s), {len(found) - len(new)} accepted, {len(new)} new")
    return 1 if new else 0


if __name__ == "__main__":
    sys.exit(main())
