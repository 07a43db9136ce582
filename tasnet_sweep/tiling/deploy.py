"""What it takes to run a plan on a Hailo device: one HEF per distinct weight content, and the
network groups the device can hold at once.

A HEF carries its weights, so instances of one unit that hold different weights need one HEF
each; instances whose weights are identical share one.  HailoRT limits the core-ops (network
groups) configured on a device over the lifetime of its VDevice: ``VdmaDevice`` appends every
configured core-op to ``m_core_ops`` and checks the count against
``CONTROL_PROTOCOL__MAX_CONTEXT_SWITCH_APPLICATIONS`` (32 in HailoRT v4.23.0, 26 in v5.2.0;
``hailort/libhailort/src/vdma/vdma_device.cpp``, ``common/include/control_protocol.h``), and no
public call removes one.  So a plan with more HEFs than that runs in *waves*: configure up to
the limit, run those instances, release the VDevice, open a new one for the next wave.

``schedule`` replays that policy over the plan's execution order (the order the stitcher calls
the executor), and ``DeviceWaves`` applies it on a real device for both HailoRT APIs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..model.catalog import SAMPLE_RATE
from .weights import instance_params

#: written beside the HEFs: instance name -> HEF file name
HEF_MAP = "hef_map.json"


def weights_digest(unit_key: str, w, b) -> str:
    """The content of one instance's HEF: its unit and its weights."""
    h = hashlib.sha256(unit_key.encode())
    h.update(w.tobytes())
    if b is not None:
        h.update(b.tobytes())
    return h.hexdigest()


def hef_names(plan, params: dict) -> dict[str, str]:
    """instance name -> HEF file name, one file per distinct (unit, weights) content."""
    ops = {i.name: s.op for s in plan.npu_steps() for i in s.instances}
    names = {}
    for step in plan.npu_steps():
        for inst in step.instances:
            w, b = instance_params(params, inst, ops[inst.name])
            names[inst.name] = f"{inst.unit}__{weights_digest(inst.unit, w, b)[:16]}.hef"
    return names


def execution_order(plan) -> list[str]:
    """Instance names in the order the stitcher runs them for one chunk of audio."""
    return [i.name for s in plan.npu_steps() for i in s.instances]


@dataclass
class Schedule:
    """Device work for one chunk of audio under the configure-in-waves policy."""

    hefs: int  # distinct HEFs the plan needs
    instances: int
    limit: int  # network groups one VDevice can hold over its lifetime
    configures_first_chunk: int  # network groups configured for the first chunk
    waves_first_chunk: int  # VDevices opened for the first chunk
    configures_per_chunk: int  # ... for every later chunk (steady state)
    waves_per_chunk: int
    switches_per_chunk: int  # consecutive runs on different network groups

    def as_dict(self) -> dict:
        return asdict(self)


def schedule(order: list[str], hef_of: dict[str, str], limit: int) -> Schedule:
    """Replay ``DeviceWaves``' policy over two chunks of ``order`` (the second is steady)."""
    waves = DeviceWaves(limit, open_device=lambda: None, configure=lambda dev, hef: None)
    counts = []
    for _ in range(2):
        before = (waves.configures, waves.waves)
        for name in order:
            waves.get(hef_of[name])
        counts.append((waves.configures - before[0], waves.waves - before[1]))
    runs = [hef_of[n] for n in order]
    switches = sum(a != b for a, b in zip(runs, runs[1:]))
    return Schedule(len(set(hef_of.values())), len(order), limit, counts[0][0], counts[0][1],
                    counts[1][0], counts[1][1], switches)


class DeviceWaves:
    """At most ``limit`` network groups per VDevice; a new one when the limit is reached.

    ``open_device()`` returns a device handle (a context manager, or None in ``schedule``);
    ``configure(device, hef)`` returns whatever the executor runs.  Counts configures, waves
    (VDevices opened) and switches (a run on another network group than the last run).
    """

    def __init__(self, limit: int, open_device, configure):
        if limit < 1:
            raise ValueError(f"limit={limit}: a device holds at least one network group")
        self.limit, self._open, self._configure = int(limit), open_device, configure
        self._device, self._is_open = None, False
        self._configured: dict[str, object] = {}
        self.configures = self.waves = self.switches = 0
        self._last = None

    def get(self, hef: str):
        """The configured network group of ``hef``, configuring (in a new wave if full)."""
        if hef in self._configured:
            found = self._configured[hef]
        else:
            if not self._is_open or len(self._configured) >= self.limit:
                self.release()
                self._device = self._open()
                if self._device is not None and hasattr(self._device, "__enter__"):
                    self._device = self._device.__enter__()
                self._is_open = True
                self.waves += 1
            found = self._configure(self._device, hef)
            self._configured[hef] = found
            self.configures += 1
        if self._last is not None and self._last != hef:
            self.switches += 1
        self._last = hef
        return found

    def release(self) -> None:
        """Release the VDevice and everything configured on it."""
        for handle in self._configured.values():
            close = getattr(handle, "close", None)
            if close is not None:
                close()
        self._configured.clear()
        if self._device is not None and hasattr(self._device, "__exit__"):
            self._device.__exit__(None, None, None)
        self._device, self._is_open = None, False

    def stats(self) -> dict:
        return {"configures": self.configures, "configure_waves": self.waves,
                "network_group_switches": self.switches, "max_configured": self.limit}


def read_hef_map(hef_dir: Path) -> dict[str, str] | None:
    """instance -> HEF file name from ``hef_dir/hef_map.json``, or None without one."""
    path = Path(hef_dir) / HEF_MAP
    if not path.is_file():
        return None
    return dict(json.loads(path.read_text())["instances"])


def device_figures(plan, hef_of: dict[str, str], hw, time_len: int,
                   unit_fps: dict[str, float] | None = None) -> dict:
    """HEF count, configure waves and network-group switches per second of audio, for chunks
    of ``time_len`` samples; with ``unit_fps`` (the estimate's FPS bound per distinct unit) an
    on-device latency estimate that counts those switches (``hw.configure_ms`` and
    ``hw.switch_ms`` are GUESSED constants; the result is an estimate, labelled so)."""
    sched = schedule(execution_order(plan), hef_of, int(hw["max_configured_networks"]))
    chunks_per_s = SAMPLE_RATE / time_len
    out = {"n_hefs": sched.hefs, "distinct_units": len(plan.units),
           "max_configured_networks": sched.limit, "schedule": sched.as_dict(),
           "chunk_len": time_len, "sample_rate": SAMPLE_RATE,
           "configure_waves_per_audio_s": sched.waves_per_chunk * chunks_per_s,
           "configures_per_audio_s": sched.configures_per_chunk * chunks_per_s,
           "switches_per_audio_s": sched.switches_per_chunk * chunks_per_s}
    if unit_fps is not None and all(unit_fps.get(k) for k in plan.units):
        lens = plan.lengths(time_len)
        compute_s = sum(s.n_tiles(lens[s.src]) * s.per_source / unit_fps[i.unit]
                        for s in plan.npu_steps() for i in s.instances)
        overhead_ms = (sched.configures_per_chunk * float(hw["configure_ms"])
                       + sched.switches_per_chunk * float(hw["switch_ms"]))
        out["est_device_ms_per_chunk"] = 1e3 * compute_s + overhead_ms
        out["est_device_rtf"] = out["est_device_ms_per_chunk"] / (1e3 * time_len / SAMPLE_RATE)
        out["est_device_note"] = ("estimate: the units' FPS bounds plus configure_ms per "
                                  "configure and switch_ms per switch (both GUESSED)")
    return out
