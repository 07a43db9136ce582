"""Compile backends: every unit walks translate -> optimize -> compile through one of these."""

from __future__ import annotations

from .base import CompileBackend


def backend_problems(compiler_cfg) -> list[str]:
    """Cheap checks that a backend can start (run in preflight, before any directory exists)."""
    import importlib.util

    name = compiler_cfg.backend
    if name == "hailo_dfc" and importlib.util.find_spec("hailo_sdk_client") is None:
        from .hailo_dfc import MISSING_SDK

        return [MISSING_SDK]
    if name == "replay":
        from ..config import ConfigError
        from .replay import check_tsv

        try:
            check_tsv(compiler_cfg.replay_tsv)
        except ConfigError as exc:
            return exc.problems
    return []


def make_backend(compiler_cfg, hw_cfg) -> CompileBackend:
    """The backend named by ``compiler.backend``; heavy modules are imported only here."""
    name = compiler_cfg.backend
    if name == "estimate":
        from .estimate import EstimateBackend

        return EstimateBackend(compiler_cfg, hw_cfg)
    if name == "hailo_dfc":
        from .hailo_dfc import HailoDfcBackend

        return HailoDfcBackend(compiler_cfg, hw_cfg)
    if name == "replay":
        from .replay import ReplayBackend

        return ReplayBackend(compiler_cfg, hw_cfg)
    raise ValueError(f"compiler.backend={name!r}: expected estimate, hailo_dfc or replay")
