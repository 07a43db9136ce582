"""Free the disk that nothing refers to any more:
``python -m tasnet_sweep.commands.gc [--outputs outputs] [--dry-run]``.

What is kept:
- a run folder (one with ``result.json`` under ``<outputs>/runs`` or ``<outputs>/multirun``)
  that a summary TSV lists in its ``run_dir`` column (a single run lists itself);
- a compile-cache entry that a kept run uses: its ``result.json`` names the entry's key, or one
  of the run's files is the same file (hard link) as one of the entry's, as every trial's ONNX
  and HEF are;
- a trial-cache entry whose compile entry is kept.
Everything else under ``<outputs>`` of those three kinds is removed: run folders of sweeps cut
short before their summary row, and cache entries of runs deleted since.  Studies, MLflow
stores, summaries and reports are never touched.  ``--dry-run`` lists what would go.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from pathlib import Path

from ..results import read_result

PROG = "tasnet_sweep.commands.gc"


def _size(path: Path) -> int:
    """Bytes a tree holds alone (files with other hard links are shared, not freed)."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files if p.stat().st_nlink == 1)


def run_dirs(outputs: Path) -> list[Path]:
    found = []
    for top in ("runs", "multirun"):
        if (outputs / top).is_dir():
            found += [p.parent for p in (outputs / top).rglob("result.json")]
    return sorted(set(found))


def listed_runs(outputs: Path) -> set[Path]:
    """Run folders some summary TSV under ``outputs`` lists."""
    listed: set[Path] = set()
    for tsv in outputs.rglob("*.tsv"):
        try:
            with open(tsv, newline="") as f:
                for row in csv.DictReader(f, delimiter="\t"):
                    if (row.get("run_dir") or "").strip():
                        listed.add(Path(row["run_dir"]).resolve())
        except (OSError, UnicodeDecodeError, csv.Error):
            continue
    return listed


def _inodes(folder: Path) -> set[tuple[int, int]]:
    return {(p.stat().st_dev, p.stat().st_ino) for p in folder.rglob("*") if p.is_file()}


def plan(outputs: Path) -> dict[str, list[Path]]:
    """What gc would remove: {"runs": [...], "compile": [...], "trial": [...]}."""
    outputs = outputs.resolve()
    listed = listed_runs(outputs)
    runs = run_dirs(outputs)
    kept = [r for r in runs if r.resolve() in listed]
    drop_runs = [r for r in runs if r.resolve() not in listed]
    keys, inodes = set(), set()
    for run in kept:
        result = read_result(run / "result.json")
        if result is not None:
            keys.add(result.compile_key)
        inodes |= _inodes(run)
    cache = outputs / "cache"
    drop_compile, kept_compile = [], set()
    for entry in sorted((cache / "compile").glob("*/*")) if (cache / "compile").is_dir() else []:
        if not entry.is_dir():
            continue
        if entry.name in keys or _inodes(entry) & inodes:
            kept_compile.add(entry.name)
        else:
            drop_compile.append(entry)
    drop_trial = []
    for entry in sorted((cache / "trial").glob("*/*")) if (cache / "trial").is_dir() else []:
        if not entry.is_dir():
            continue
        try:
            key = json.loads((entry / "record.json").read_text()).get("compile_key")
        except (OSError, ValueError):
            key = None
        if key not in kept_compile:
            drop_trial.append(entry)
    return {"runs": drop_runs, "compile": drop_compile, "trial": drop_trial}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=f"python -m {PROG}", description=__doc__.splitlines()[0])
    ap.add_argument("--outputs", default="outputs",
                    help="the outputs folder to clean (default: ./outputs)")
    ap.add_argument("--dry-run", action="store_true", help="list what would be removed")
    args = ap.parse_args(argv)
    outputs = Path(args.outputs)
    if not outputs.is_dir():
        print(f"{PROG}: error: --outputs {args.outputs!r} is not a folder: expected the outputs "
              "folder of a sweep's working directory", file=sys.stderr)
        return 2
    found = plan(outputs)
    total = 0
    for kind, label in (("runs", "run folder not in any summary"),
                        ("compile", "compile-cache entry no kept run uses"),
                        ("trial", "trial-cache entry of a removed compile entry")):
        for path in found[kind]:
            size = _size(path)
            total += size
            print(f"{'would remove' if args.dry_run else 'removed'} {path} "
                  f"({size / 1e6:.1f} MB): {label}")
            if not args.dry_run:
                shutil.rmtree(path, ignore_errors=True)
    count = sum(len(v) for v in found.values())
    print(f"{PROG}: {count} item(s), {total / 1e6:.1f} MB "
          f"{'would be freed' if args.dry_run else 'freed'} under {outputs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
