"""Export what the Pulumi program registers, under the test mocks, as an ARM template, so that
template scanners (Checkov, PSRule, ...) can judge the stack without an Azure subscription.

Usage::

    python -m scripts.arm_export --network private --out dist/arm-private.json
    checkov -f dist/arm-private.json --framework arm

The program runs in-process under the same Pulumi mocks as ``tests/infra`` (no Azure, no
pulumi CLI); each resource's engine inputs are written with ARM's property names and nesting,
as Microsoft's management SDK model of its type serialises them (tests/infra/arm_contract.py),
with the API version pulumi-azure-native uses. Ids and names are the mocks' stand-ins.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"


def arm_type_and_name(resource_id: str) -> tuple[str, str]:
    """ARM type and template name (``parent/child`` for children) of a resource id."""
    if "/providers/" not in resource_id:
        return "Microsoft.Resources/resourceGroups", resource_id.rstrip("/").rsplit("/", 1)[-1]
    namespace, *rest = resource_id.rsplit("/providers/", 1)[1].split("/")
    return f"{namespace}/{'/'.join(rest[0::2])}", "/".join(rest[1::2])


def arm_template(registrations: Iterable[Any]) -> dict[str, Any]:
    """An ARM template with one resource per azure-native registration (components and dynamic
    resources have no ARM resource and are left out)."""
    from tests.infra.arm_contract import CONTRACTS, arm_body

    resources = []
    for registration in registrations:
        if not registration.custom or not registration.type_.startswith("azure-native:"):
            continue
        arm_type, name = arm_type_and_name(registration.outputs["id"])
        resources.append(
            {
                "type": arm_type,
                "apiVersion": CONTRACTS[registration.type_].pulumi_api_version,
                "name": name,
                **arm_body(registration.type_, registration.inputs),
            }
        )
    return {"$schema": SCHEMA, "contentVersion": "1.0.0.0", "resources": resources}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.arm_export", description=__doc__.split("\n", 1)[0]
    )
    parser.add_argument("--network", choices=("public", "private"), default="public")
    parser.add_argument(
        "--config",
        default="{}",
        help="more stack config as a JSON object, e.g. '{\"zoneRedundant\": true}'",
    )
    parser.add_argument("--out", type=Path, required=True, help="template file to write")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from tests.infra.harness import run_program  # the mocks are test code; imported on use

    config = {"network": args.network, **json.loads(args.config)}
    template = arm_template(run_program(config))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(template, indent=2, sort_keys=True) + "\n")
    print(f"{args.out}: {len(template['resources'])} resources ({args.network})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
