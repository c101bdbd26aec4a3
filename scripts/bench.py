"""`make bench`: run the benchmarks of each part and print their figures as Markdown tables.

Benchmarks are long (1 h of media, 1 GiB chunks), so they are kept out of `make test`. Each part
has its own module with a ``main(argv) -> int``; this one runs them in turn.

    python -m scripts.bench                 # every benchmark
    python -m scripts.bench emulator api    # some of them
"""

from __future__ import annotations

import argparse
import importlib
import sys

BENCHMARKS = {
    "emulator": "scripts.bench_emulator",
    "api": "scripts.bench_api",
    "api-auth": "scripts.bench_api_auth",
    "archiver": "scripts.bench_archiver",
    "reconcile": "scripts.bench_reconcile",
    "api-bodies": "scripts.bench_api_bodies",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "parts",
        nargs="*",
        metavar="PART",
        help=f"which benchmarks to run: {', '.join(BENCHMARKS)} (default: all)",
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.parts) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    failures = 0
    for part in args.parts or list(BENCHMARKS):
        print(f"\n## Benchmark: {part}\n", flush=True)
        module = importlib.import_module(BENCHMARKS[part])
        code = module.main([])
        if code:
            print(f"benchmark {part} failed with exit code {code}", file=sys.stderr)
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
