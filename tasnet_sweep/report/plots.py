"""Pictures people would rather look at than read: the sweep report's plots (matplotlib is
imported inside the functions that draw, as in compare.py and search/frontier.py)."""

from __future__ import annotations

from pathlib import Path

from ..atomic import write_bytes

COLOURS = {"pass": "#2e7d32", "fail": "#c62828", "uncertain": "#f9a825", "": "#bdbdbd"}


def png_bytes(fig) -> bytes:
    """The figure as PNG bytes (then closed), ready for an atomic write."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def save_png(fig, path: str | Path) -> Path:
    return write_bytes(path, png_bytes(fig))


def _state(value: str) -> str:
    v = str(value).lower()
    return "pass" if v == "true" else "fail" if v == "false" else ""


def varying_columns(rows: list[dict], candidates) -> list[str]:
    """The candidates whose value varies across ``rows``, the one that changes most often from
    one row to the next first (the knob a ladder or grid steps leads each label)."""
    varying = [c for c in candidates if len({r.get(c, "") for r in rows}) > 1]

    def changes(column: str) -> int:
        return sum(a.get(column, "") != b.get(column, "") for a, b in zip(rows, rows[1:]))

    return sorted(varying, key=lambda c: -changes(c))


def pass_fail_strip(rows: list[dict], label_columns, path: str | Path, title: str) -> Path:
    """One line per row in run order with two cells (HAR, HEF): green pass, red fail, amber
    uncertain (an estimate inside a recorded bracket), grey not run; each line is labelled
    with the knobs that vary across the rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    n = max(1, len(rows))
    labels = []
    for i, row in enumerate(rows, 1):
        parts = [f"{c}={row.get(c)}" for c in label_columns if row.get(c) not in (None, "")]
        parts = parts or [str(row.get("unit", ""))]
        text = f"{i}. " + "  ".join(parts)
        labels.append(text if len(text) <= 90 else text[:87] + "...")
    width = 3.0 + 0.075 * max(len(t) for t in labels)
    fig, ax = plt.subplots(figsize=(width, 1.2 + 0.32 * n))
    for i, row in enumerate(rows):
        y = n - 1 - i
        for col, key in enumerate(("har_success", "hef_success")):
            state = _state(row.get(key, ""))
            if key == "hef_success" and str(row.get("verdict", "")).lower() == "uncertain":
                state = "uncertain"  # an estimate inside a recorded bracket
            ax.add_patch(plt.Rectangle((col, y), 0.94, 0.9, color=COLOURS[state]))
    ax.set_xlim(0, 2)
    ax.set_ylim(0, n)
    ax.set_xticks([0.47, 1.47], ["HAR", "HEF"])
    ax.xaxis.tick_top()
    ax.set_yticks([n - 1 - i + 0.45 for i in range(len(rows))], labels, fontsize=8,
                  family="monospace")
    ax.set_title(title, fontsize=9, pad=18)
    ax.legend(handles=[Patch(color=COLOURS["pass"], label="pass"),
                       Patch(color=COLOURS["fail"], label="fail"),
                       Patch(color=COLOURS["uncertain"], label="uncertain (estimate)"),
                       Patch(color=COLOURS[""], label="not run")],
              loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, frameon=False)
    for side in ("top", "right", "left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.tick_params(length=0)
    fig.tight_layout()
    return save_png(fig, path)
