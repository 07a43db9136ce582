"""Fixtures shared by the test files (helpers they import live in tests/helpers.py)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from helpers import DOUBLES, compose_cfg, free_port

# single runs' MLflow agent (tasnet_sweep/tracking/agent.py) stays up to 300 s for the next
# trial; a test suite's agents should leave soon after their last trial
os.environ.setdefault("TASNET_TRACKING_AGENT_IDLE_S", "5")


@pytest.fixture
def cfg_factory():
    return compose_cfg


def _forget(package: str) -> None:
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[name]


@pytest.fixture
def hailo_platform(monkeypatch):
    """The test double of HailoRT's ``hailo_platform`` (tests/doubles), fresh for each test.

    Yields ``hailo_platform.pyhailort.pyhailort``, where the double keeps its exceptions and
    its test state (RUN_LOG, VSTREAM_LOG, CONFIGURE_LOG, slow_ms, MAX_CORE_OPS, DEVICES)."""
    monkeypatch.syspath_prepend(str(DOUBLES))
    _forget("hailo_platform")
    import hailo_platform.pyhailort.pyhailort as double

    yield double
    _forget("hailo_platform")


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_cluster_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@pytest.fixture
def postgres():
    """A throwaway PostgreSQL cluster on 127.0.0.1:<free port>; yields the Optuna URL."""
    pytest.importorskip("psycopg2", reason="psycopg2-binary is not installed (pip)")
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries are not installed (apt-get install postgresql)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: initdb cannot run as root")
    # outside pytest's 0700 tmp tree, so the cluster owner can reach it
    root = Path(tempfile.mkdtemp(prefix="tasnet_pg_"))
    os.chmod(root, 0o755)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data, port = root / "data", free_port()
    run = lambda *a: subprocess.run(_as_cluster_owner([str(x) for x in a]), check=True,  # noqa
                                    capture_output=True, text=True, timeout=120)
    try:
        run(bindir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        run(bindir / "pg_ctl", "-D", data, "-l", root / "pg.log", "-w", "-t", "60", "-o",
            f"-p {port} -k {root} -h 127.0.0.1 -c fsync=off", "start")
        run(bindir / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "optuna")
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/optuna"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(_as_cluster_owner([str(bindir / "pg_ctl"), "-D", str(data), "-m",
                                              "immediate", "stop"]),
                           capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
