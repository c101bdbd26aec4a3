"""`make package`: build dist/functionapp.zip, the same zip `pulumi up` deploys.

Prints the path, the entry count and the SHA-256, so two builds can be compared by eye.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra.package import DEFAULT_OUTPUT, FUNCTIONS_DIR, PackageError, build_package


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions-dir", type=Path, default=FUNCTIONS_DIR)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    try:
        info = build_package(args.functions_dir, args.output)
    except PackageError as error:
        print(f"package build failed: {error}", file=sys.stderr)
        return 1
    print(f"{info.path} entries={info.entries} sha256={info.sha256}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
