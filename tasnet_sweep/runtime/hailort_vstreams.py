"""HailoRT 4.x's legacy InferVStreams path for the HEFs of a plan.

The calls follow HailoRT v4.23.0's own tutorial, hailo-ai/hailort
``hailort/libhailort/bindings/python/platform/hailo_tutorials/notebooks/
HRT_2_Infer_Pipeline_Inference_Tutorial.ipynb``: ``HEF(path)``,
``ConfigureParams.create_from_hef(hef, interface=HailoStreamInterface.PCIe)``,
``VDevice(params).configure(hef, params)[0]``, ``InputVStreamParams.make(ng, format_type=...,
timeout_ms=...)`` (and its output twin), ``InferVStreams(ng, in_p, out_p)``,
``pipe.infer({name: x_nhwc})`` and the names from ``hef.get_input_vstream_infos()``; the
signatures are in ``hailo_platform/pyhailort/pyhailort.py`` of the same tag, where ``make``
takes ``timeout_ms`` (HailoRT's default 10,000 ms when not given).  The VDevice runs HailoRT's
round-robin scheduler, as the InferModel path's does; under the scheduler a network group is not
activated (``ConfiguredNetwork.activate()`` is deprecated there and only logs a warning).
``infer`` takes and returns batched NHWC arrays, so all tiles of an instance go in one call.
"""

from __future__ import annotations

import numpy as np

from ..tiling.executors import _HefExecutor


class VStreamsExecutor(_HefExecutor):
    def _open_device(self):
        from hailo_platform import HailoSchedulingAlgorithm, VDevice

        vparams = VDevice.create_params()
        vparams.scheduling_algorithm = HailoSchedulingAlgorithm.ROUND_ROBIN
        return VDevice(vparams)

    def _configure(self, vdevice, hef_path: str):
        from hailo_platform import (
            HEF,
            ConfigureParams,
            FormatType,
            HailoStreamInterface,
            InputVStreamParams,
            OutputVStreamParams,
        )

        hef = HEF(hef_path)
        params = ConfigureParams.create_from_hef(hef, interface=HailoStreamInterface.PCIe)
        ng = vdevice.configure(hef, params)[0]
        in_p = InputVStreamParams.make(ng, format_type=FormatType.FLOAT32,
                                       timeout_ms=self.timeout_ms)
        out_p = OutputVStreamParams.make(ng, format_type=FormatType.FLOAT32,
                                         timeout_ms=self.timeout_ms)
        names = (hef.get_input_vstream_infos()[0].name, hef.get_output_vstream_infos()[0].name)
        return ng, in_p, out_p, names

    def run(self, inst, x):
        from hailo_platform import InferVStreams

        ng, in_p, out_p, (in_name, out_name) = self.waves.get(str(self.hef_path(inst)))
        n, c, rows, w = x.shape  # every (n, row) is a tile: the HEF's batch is tiles
        nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1), np.float32).reshape(
            n * rows, 1, w, c)
        with InferVStreams(ng, in_p, out_p) as pipe:
            y = pipe.infer({in_name: nhwc})[out_name]
        y = np.asarray(y, np.float32)  # [n * rows, 1, w_out, c_out]
        y = y.reshape(n, rows, y.shape[2], y.shape[3])
        return np.ascontiguousarray(y.transpose(0, 3, 1, 2))
