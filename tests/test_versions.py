"""The package versions a trial's cache key holds, read without ``importlib.metadata``."""

from __future__ import annotations

import sys
from importlib import metadata

import pytest

from tasnet_sweep.trial import installed_version


@pytest.mark.parametrize("dist", ["torch", "onnx", "omegaconf"])
def test_an_installed_packages_version_is_the_one_importlib_metadata_reads(dist):
    assert installed_version(dist) == metadata.version(dist)


def _package(root, name: str, info: str, headers: str) -> None:
    (root / name).mkdir()
    (root / name / "__init__.py").write_text("")
    (root / info).mkdir()
    (root / info / "METADATA").write_text(headers)


def test_the_metadata_headers_decide_and_a_stray_dist_info_is_passed_over(tmp_path, monkeypatch):
    """The headers end at the first blank line (a description below may say anything); a
    ``.dist-info`` naming another distribution is left to the general lookup.  Every answer
    is the one ``importlib.metadata`` gives."""
    _package(tmp_path, "tsw_probe", "tsw_probe-9.8.7.dist-info",
             "Metadata-Version: 2.1\nName: tsw_probe\nVersion: 9.8.7\n\nVersion: 0.0.1\n")
    _package(tmp_path, "tsw_other", "tsw_other-1.0.dist-info",
             "Metadata-Version: 2.1\nName: tsw-other-fork\nVersion: 1.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("tsw_probe", "tsw_other"):
        sys.modules.pop(name, None)
    assert installed_version("tsw_probe") == "9.8.7" == metadata.version("tsw_probe")
    assert installed_version("tsw_other") == metadata.version("tsw_other")
    assert installed_version("tsw_not_installed") is None
