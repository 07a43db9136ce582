"""Params or MACs of every configuration of a search, without exporting or compiling.

``search.objective`` ranks configurations nobody has compiled yet, so it needs the numbers a
trial would record, for the whole lattice, up front:

- params: the built module's parameter count (trial.py: the unit, or the whole model when
  tiled), built on torch's meta device, so no weights are allocated;
- macs: untiled, the Conv/ConvTranspose multiply-accumulates of the unit at ``time_len`` (what
  ``export.graph_macs`` reads from the ONNX graph), counted by forward hooks on meta tensors,
  or from the tiling planner's exact count for the full model; tiled, the planner's untiled
  MACs per second of audio, as the tiled trial records them.

Configurations differ only in the knob values; every point is the search's first job with
its knob values set, and points whose model, unit and tiling agree share one count.
"""

from __future__ import annotations

import copy
import hashlib
import io
import logging
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from ..atomic import write_bytes
from ..config import SEARCH_OBJECTIVES as OBJECTIVES
from ..tiling.plan import build_plan
from .lattice import Lattice

log = logging.getLogger(__name__)


class SizeError(ValueError):
    """A search whose sizes cannot be counted without compiling (one line for the user)."""


def trial_size(cfg, objective: str) -> int:
    """What a trial of ``cfg`` records as ``objective`` (see the module docstring)."""
    import torch

    from ..model.convtasnet import build_model
    from ..model.units import build_unit, count_params

    tiled = cfg.tiling.mode != "none"
    if objective == "macs" and (tiled or cfg.unit.name == "full"):
        plan = build_plan(cfg.model, cfg.tiling)
        if tiled:
            return int(plan.host_share()["per_second_of_audio"]["untiled_macs"])
        return int(plan.workload(cfg.model.time_len)["untiled_macs"])
    with torch.device("meta"):
        if tiled:
            return count_params(build_model(cfg.model))
        unit = build_unit(cfg.model, cfg.unit)
    if objective == "params":
        return count_params(unit.module)
    return conv_macs(unit.module, [shape for _, shape in unit.inputs])


def conv_macs(module, input_shapes: list[list[int]]) -> int:
    """Conv/ConvTranspose multiply-accumulates of one forward pass on meta tensors (the count
    ``export.graph_macs`` makes on the exported graph)."""
    import torch
    from torch.nn.modules.conv import _ConvNd

    total = 0

    def count(layer, inputs, output):
        nonlocal total
        per_element = layer.in_channels // layer.groups if not layer.transposed else \
            layer.out_channels // layer.groups
        per_element *= math.prod(layer.kernel_size)
        total += (inputs[0] if layer.transposed else output).numel() * per_element

    hooks = [m.register_forward_hook(count) for m in module.modules() if isinstance(m, _ConvNd)]
    try:
        with torch.no_grad():
            module(*[torch.empty(s, device="meta") for s in input_shapes])
    finally:
        for h in hooks:
            h.remove()
    return total


def lattice_sizes(lattice: Lattice, first_job: DictConfig, objective: str,
                  size: Callable = trial_size) -> np.ndarray:
    """``objective`` of every lattice point: ``first_job`` (a composed job config) with each
    point's knob values set.  Knobs must be config values (``model.bn``), not config groups."""
    if objective not in OBJECTIVES:
        raise SizeError(f"search.objective={objective!r} is invalid: expected null or one of "
                        f"{', '.join(OBJECTIVES)}")
    for name in lattice.names:
        node = OmegaConf.select(first_job, name, default=None)
        if node is None or isinstance(node, DictConfig):
            what = "selects a config group" if node is not None else "is not in the job config"
            raise SizeError(f"search.objective={objective} needs knobs that are config values; "
                            f"{name!r} {what}: drop the objective or search over values such "
                            "as model.bn")
    log.info("counting %s of %d configurations (meta-device builds, no weights)...", objective,
             lattice.size)
    out = np.zeros(lattice.shape, dtype=np.int64)
    counted: dict[str, int] = {}
    job = copy.deepcopy(first_job)
    for point in lattice.points():
        for name, value in lattice.values(point).items():
            OmegaConf.update(job, name, value, merge=False)
        key = _size_key(job)
        if key not in counted:
            counted[key] = size(job, objective)
        out[point] = counted[key]
    log.info("%s of %d configurations counted from %d distinct builds", objective,
             lattice.size, len(counted))
    return out


def _size_key(job) -> str:
    """What a size depends on: the model and unit, untiled; tiled, the model and the tiling
    mode only (both numbers describe the untiled network, whatever the tile width)."""
    tiled = job.tiling.mode != "none"
    parts = [OmegaConf.to_container(job.model, resolve=True),
             job.tiling.mode if tiled else OmegaConf.to_container(job.unit, resolve=True)]
    return repr(parts)


def cached_lattice_sizes(lattice: Lattice, first_job: DictConfig, objective: str,
                         cache_dir: str | Path, size: Callable = trial_size) -> np.ndarray:
    """``lattice_sizes``, kept in ``cache_dir`` under a hash of the knobs, the objective and
    the first job's model, unit and tiling, so a resumed search does not count again."""
    identity = repr([[(k.name, list(k.values)) for k in lattice.knobs], objective,
                     _size_key(first_job), OmegaConf.to_container(first_job.tiling,
                                                                  resolve=True)])
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"sizes-{objective}-{digest}.npy"
    if path.exists():
        try:
            cached = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:  # truncated or not an array at all
            log.warning("sizes cache %s is unreadable (%s): counting again", path, exc)
            cached = None
        if cached is not None and cached.shape == lattice.shape:
            return cached
    sizes = lattice_sizes(lattice, first_job, objective, size)
    buffer = io.BytesIO()
    np.save(buffer, sizes)
    write_bytes(path, buffer.getvalue())
    return sizes
