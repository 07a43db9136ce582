"""Rebuild a sweep's summary TSV from its per-trial ``result.json`` files.

``python -m tasnet_sweep.commands.rebuild_summary <sweep_dir> [--name summary.tsv]``

The summary is derived data: after a sweep was killed, a disk filled up or a row was edited by
hand, this writes it again (atomically) from the trials that finished.  A trial cut off before
its ``result.json`` was complete has no row.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..report.tsv import read_rows, rebuild

PROG = "tasnet_sweep.commands.rebuild_summary"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {PROG}",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", help="a sweep (multirun) or run directory")
    parser.add_argument("--name", default="summary.tsv",
                        help="the TSV's file name in sweep_dir (default summary.tsv)")
    args = parser.parse_args(argv)
    sweep = Path(args.sweep_dir)
    if not sweep.is_dir():
        print(f"{PROG}: error: {sweep} is not a directory: expected a sweep directory holding "
              "run directories with result.json", file=sys.stderr)
        return 2
    if "/" in args.name or args.name in ("", ".", ".."):
        print(f"{PROG}: error: --name={args.name!r} is invalid: expected a file name without a "
              "directory", file=sys.stderr)
        return 2

    out, skipped = rebuild(sweep, args.name)
    print(f"{out}: {len(read_rows(out))} rows from {sweep}"
          + (f" ({skipped} result.json without a trial's summary skipped)" if skipped else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
