"""Pictures people would rather look at than read.  matplotlib is imported only here."""

from __future__ import annotations

from pathlib import Path

COLOURS = {"pass": "#2e7d32", "fail": "#c62828", "": "#bdbdbd"}


def _state(value: str) -> str:
    v = str(value).lower()
    return "pass" if v == "true" else "fail" if v == "false" else ""


def varying_columns(rows: list[dict], candidates) -> list[str]:
    return [c for c in candidates if len({r.get(c, "") for r in rows}) > 1]


def pass_fail_strip(rows: list[dict], label_columns, path: str | Path, title: str) -> Path:
    """One column per row in run order, two lanes (HAR, HEF), green pass / red fail / grey n/a."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from ..atomic import write_bytes

    n = max(1, len(rows))
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * n + 2), 2.8 + 0.12 * len(label_columns)))
    for i, row in enumerate(rows):
        for lane, key in enumerate(("hef_success", "har_success")):
            ax.add_patch(plt.Rectangle((i, lane), 0.92, 0.92,
                                       color=COLOURS[_state(row.get(key, ""))]))
    labels = []
    for row in rows:
        parts = [f"{c}={row.get(c)}" for c in label_columns] or [row.get("unit", "")]
        labels.append("\n".join(parts))
    ax.set_xlim(0, n)
    ax.set_ylim(0, 2)
    ax.set_yticks([0.46, 1.46], ["HEF", "HAR"])
    ax.set_xticks([i + 0.46 for i in range(len(rows))], labels, rotation=60, ha="right",
                  fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.legend(handles=[Patch(color=COLOURS["pass"], label="pass"),
                       Patch(color=COLOURS["fail"], label="fail"),
                       Patch(color=COLOURS[""], label="not run")],
              loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
    for side in ("top", "right", "left", "bottom"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    tmp = Path(path).with_name(f".{Path(path).name}.partial.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    data = tmp.read_bytes()
    tmp.unlink()
    return write_bytes(path, data)
