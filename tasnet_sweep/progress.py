"""Progress bars for long work (tqdm on stderr), silent when stderr is not a terminal, so logs
and CI output keep only their lines."""

from __future__ import annotations

import sys


def bar(total: int, desc: str, unit: str = "it", initial: int = 0):
    """A tqdm bar; ``disable`` when stderr is not a TTY (it then accepts the same calls)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, initial=initial, leave=True,
                dynamic_ncols=True, disable=not sys.stderr.isatty(), file=sys.stderr)


def iterate(items, desc: str, unit: str = "it", total: int | None = None):
    """``items`` with a bar (see ``bar``)."""
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit=unit, total=total, leave=True, dynamic_ncols=True,
                disable=not sys.stderr.isatty(), file=sys.stderr)
