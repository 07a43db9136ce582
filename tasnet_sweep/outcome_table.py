"""Tables of recorded compile outcomes (the public TSV, a sweep's summary.tsv), read strictly.

``agreement``, ``fit_profile`` and ``compiler=replay`` all read them; a file that is not such a
table (binary, a NUL byte, a row cut short, a verdict that is neither true nor false) is
refused in one line naming the file, the line and what was expected, never half-read.
Rows are split the way ``report/tsv.py`` writes a summary (tabs, no quoting, ``\\`` escapes).
"""

from __future__ import annotations

import csv
from pathlib import Path

#: columns that hold a verdict; empty means "not observed" (a HAR that never got that far)
VERDICT_COLUMNS = ("har_success", "hef_success")
TRUE_WORDS = frozenset({"true", "1", "yes", "pass"})
FALSE_WORDS = frozenset({"false", "0", "no", "fail"})
_DIALECT = {"delimiter": "\t", "quoting": csv.QUOTE_NONE, "escapechar": "\\"}


class TableError(ValueError):
    """Not a table of outcomes (the message is the one line to show)."""


def read_table(path: str | Path) -> tuple[list[dict], list[str]]:
    """(rows as {column: text}, the ``#`` comment lines) of the table at ``path``."""
    path = Path(path)
    data = path.read_bytes()
    if b"\0" in data:
        line = data[:data.index(b"\0")].count(b"\n") + 1
        raise TableError(f"{path} line {line} holds a NUL byte: expected a tab-separated text "
                         "table of outcomes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise TableError(f"{path} line {line} is not UTF-8 text: expected a tab-separated "
                         "text table of outcomes") from None
    comments, body = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("#"):
            comments.append(line)
        elif line.strip():
            body.append((number, line))
    if not body:
        return [], comments
    header = _cells(body[0][1])
    rows = []
    for number, line in body[1:]:
        cells = _cells(line)
        if len(cells) != len(header):
            raise TableError(f"{path} line {number} has {len(cells)} fields where the header "
                             f"has {len(header)}: expected one tab-separated value per column")
        row = dict(zip(header, cells))
        for column in VERDICT_COLUMNS:
            value = (row.get(column) or "").strip()
            if value and value.lower() not in TRUE_WORDS | FALSE_WORDS:
                raise TableError(f"{path} line {number}: {column}={value!r} is not a verdict: "
                                 "expected true or false (empty when not observed)")
        rows.append(row)
    return rows, comments


def _cells(line: str) -> list[str]:
    return next(csv.reader([line], **_DIALECT), [])
