"""The README and docs/: short enough to read, links that resolve, and every command block
marked ```` ```bash run ```` run as written (in a fresh folder, one per file, blocks in order).

Blocks fenced as plain ```` ```bash ```` are shown, not run: installs, servers, Hailo's own
tools, placeholders a user fills in."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUNNABLE = re.compile(r"^```bash run\n(.*?)^```", re.M | re.S)
README_MAX_BYTES = 10 * 1024


def _runnable(doc: Path) -> list[str]:
    return RUNNABLE.findall(doc.read_text(encoding="utf-8"))


def test_the_readme_is_short_and_every_relative_link_resolves():
    assert len((REPO / "README.md").read_bytes()) <= README_MAX_BYTES
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", doc.read_text(encoding="utf-8")):
            assert (doc.parent / target).exists(), f"{doc.name} links to {target}"
    linked = set(re.findall(r"\(docs/([\w.-]+\.md)\)", (REPO / "README.md").read_text()))
    assert linked == {p.name for p in DOCS[1:]}, "every doc is reachable from the README"


@pytest.mark.slow
@pytest.mark.parametrize("doc", [d for d in DOCS if _runnable(d)], ids=lambda d: d.name)
def test_every_runnable_command_in_the_docs_runs(tmp_path, doc):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)  # `python` in a block is this interpreter
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "0"}
    env.pop("MLFLOW_TRACKING_URI", None)
    work = tmp_path / "work"
    work.mkdir()
    for n, block in enumerate(_runnable(doc), 1):
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=work, env=env,
                              capture_output=True, text=True, timeout=1800)
        assert done.returncode == 0, f"{doc.name} block {n}:\n{block}\n{done.stderr[-3000:]}"
