"""Fixtures shared by the test files (helpers they import live in tests/helpers.py)."""

from __future__ import annotations

import sys

import pytest
from helpers import DOUBLES, compose_cfg


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
