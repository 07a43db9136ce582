"""HailoRT 4.x's legacy InferVStreams path for one unit instance per HEF.

The calls follow HailoRT v4.23.0's own tutorial, hailo-ai/hailort
``hailort/libhailort/bindings/python/platform/hailo_tutorials/notebooks/
HRT_2_Infer_Pipeline_Inference_Tutorial.ipynb``: ``HEF(path)``,
``ConfigureParams.create_from_hef(hef, interface=HailoStreamInterface.PCIe)``,
``VDevice().configure(hef, params)[0]``, ``InputVStreamParams.make(ng, format_type=FLOAT32)``
(and its output twin), ``InferVStreams(ng, in_p, out_p)`` with ``ng.activate(ng.create_params())``,
``pipe.infer({name: x_nhwc})`` and the names from ``hef.get_input_vstream_infos()``; the
signatures are in ``hailo_platform/pyhailort/pyhailort.py`` of the same tag.  ``infer`` takes
and returns batched NHWC arrays.
The vstreams path carries a batch axis, so all tiles of an instance go in one call.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..tiling.executors import Executor


class VStreamsExecutor(Executor):
    name = "hailort"

    def __init__(self, plan, params: dict, hef_dir: Path, timeout_ms: int = 10000):
        super().__init__(plan, params)
        from hailo_platform import VDevice

        self.hef_dir, self.timeout_ms = Path(hef_dir), int(timeout_ms)
        self._vdevice_cm = VDevice()
        self._vdevice = self._vdevice_cm.__enter__()
        self._groups: dict[str, tuple] = {}

    def _group(self, inst):
        found = self._groups.get(inst.name)
        if found is None:
            from hailo_platform import (HEF, ConfigureParams, FormatType, HailoStreamInterface,
                                        InputVStreamParams, OutputVStreamParams)

            path = self.hef_dir / f"{inst.file_stem}.hef"
            if not path.is_file():
                raise FileNotFoundError(f"no HEF for unit instance {inst.name}: {path}")
            hef = HEF(str(path))
            params = ConfigureParams.create_from_hef(hef, interface=HailoStreamInterface.PCIe)
            ng = self._vdevice.configure(hef, params)[0]
            in_p = InputVStreamParams.make(ng, format_type=FormatType.FLOAT32)
            out_p = OutputVStreamParams.make(ng, format_type=FormatType.FLOAT32)
            names = (hef.get_input_vstream_infos()[0].name,
                     hef.get_output_vstream_infos()[0].name)
            found = (ng, in_p, out_p, names)
            self._groups[inst.name] = found
        return found

    def run(self, inst, x):
        from hailo_platform import InferVStreams

        ng, in_p, out_p, (in_name, out_name) = self._group(inst)
        n, c, rows, w = x.shape  # every (n, row) is a tile: the HEF's batch is tiles
        nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1), np.float32).reshape(
            n * rows, 1, w, c)
        # No timeout passed here yet: HailoRT's own default applies, and runtime.timeout_ms (kept
        # in self.timeout_ms) reaches the InferModel path only.
        with InferVStreams(ng, in_p, out_p) as pipe, ng.activate(ng.create_params()):
            y = pipe.infer({in_name: nhwc})[out_name]
        y = np.asarray(y, np.float32)  # [n * rows, 1, w_out, c_out]
        y = y.reshape(n, rows, y.shape[2], y.shape[3])
        return np.ascontiguousarray(y.transpose(0, 3, 1, 2))

    def close(self) -> None:
        self._groups.clear()
        if self._vdevice_cm is not None:
            self._vdevice_cm.__exit__(None, None, None)
            self._vdevice_cm = None
