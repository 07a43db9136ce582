"""A TEST DOUBLE of HailoRT's ``hailo_platform`` (InferModel API only), for tests.

It follows the calls shown in /work/shared/hailo/README.md and nothing more.  A "HEF" here is
any file named ``<x>.hef``; the double computes the unit with onnxruntime on ``<x>.onnx`` beside
it.  Like the real runtime it insists on FLOAT32 formats, C-contiguous float32 buffers shaped
exactly ``im.input().shape`` (H, W, C, no batch) and a positive timeout; ``slow_ms`` lets a test
make a run exceed its timeout.  It is not a compiler and never writes a file.
"""

from __future__ import annotations

import enum
from pathlib import Path

import numpy as np

#: every run call, for tests to inspect: (hef path, input shape)
RUN_LOG: list[tuple[str, tuple]] = []
#: simulated run duration; a run whose timeout is shorter raises HailoRTTimeout
slow_ms = 0


class HailoRTException(Exception):
    pass


class HailoRTTimeout(HailoRTException):
    pass


class HailoRTInvalidHEFException(HailoRTException):
    pass


class FormatType(enum.Enum):
    AUTO = 0
    UINT8 = 1
    UINT16 = 2
    FLOAT32 = 3


class HailoSchedulingAlgorithm(enum.Enum):
    NONE = 0
    ROUND_ROBIN = 1


class _Params:
    scheduling_algorithm = HailoSchedulingAlgorithm.NONE


class _Stream:
    def __init__(self, shape):
        self.shape = tuple(shape)
        self.format_type = FormatType.AUTO

    def set_format_type(self, fmt):
        self.format_type = fmt


class _Buffer:
    def __init__(self, stream):
        self.stream = stream
        self.buffer = None

    def set_buffer(self, buf):
        if not isinstance(buf, np.ndarray) or buf.dtype != np.float32:
            raise HailoRTException(f"buffer must be a float32 numpy array, got "
                                   f"{getattr(buf, 'dtype', type(buf))}")
        if not buf.flags["C_CONTIGUOUS"]:
            raise HailoRTException("buffer is not C-contiguous")
        if tuple(buf.shape) != self.stream.shape:
            raise HailoRTException(f"buffer shape {tuple(buf.shape)} != stream shape "
                                   f"{self.stream.shape}")
        self.buffer = buf

    def get_buffer(self):
        return self.buffer


class _Bindings:
    def __init__(self, im):
        self._in, self._out = _Buffer(im._input), _Buffer(im._output)

    def input(self, name=None):
        return self._in

    def output(self, name=None):
        return self._out


class _Configured:
    def __init__(self, im):
        self.im = im

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def create_bindings(self):
        return _Bindings(self.im)

    def run(self, bindings, timeout_ms):
        if not isinstance(timeout_ms, int) or timeout_ms <= 0:
            raise HailoRTException(f"timeout_ms must be a positive int, got {timeout_ms!r}")
        if slow_ms > timeout_ms:
            raise HailoRTTimeout(f"run took longer than {timeout_ms} ms")
        for fmt in (self.im._input.format_type, self.im._output.format_type):
            if fmt != FormatType.FLOAT32:
                raise HailoRTException(f"format {fmt} was not set to FLOAT32")
        for b in bindings:
            x = b.input().get_buffer()
            if x is None or b.output().get_buffer() is None:
                raise HailoRTException("input and output buffers must be set before run")
            nchw = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
            y = self.im._session.run(None, {self.im._input_name: nchw})[0][0]
            out = b.output().get_buffer()
            out[...] = y.transpose(1, 2, 0)
            RUN_LOG.append((self.im.hef_path, tuple(x.shape)))


class _InferModel:
    def __init__(self, hef_path: str):
        import onnxruntime as ort

        path = Path(hef_path)
        if path.suffix != ".hef" or not path.is_file():
            raise HailoRTInvalidHEFException(f"not a HEF file: {hef_path}")
        onnx_path = path.with_suffix(".onnx")
        if not onnx_path.is_file():
            raise HailoRTInvalidHEFException(f"test double needs {onnx_path.name} beside the HEF")
        self.hef_path = str(path)
        self._session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        i, o = self._session.get_inputs()[0], self._session.get_outputs()[0]
        self._input_name = i.name
        self._input = _Stream(self._hwc(i.shape))
        self._output = _Stream(self._hwc(o.shape))

    @staticmethod
    def _hwc(nchw):
        _, c, h, w = nchw
        return (h, w, c)

    def input(self, name=None):
        return self._input

    def output(self, name=None):
        return self._output

    def configure(self):
        return _Configured(self)


class VDevice:
    open_devices = 0

    def __init__(self, params=None):
        self.params = params

    @staticmethod
    def create_params():
        return _Params()

    def __enter__(self):
        VDevice.open_devices += 1
        return self

    def __exit__(self, *exc):
        VDevice.open_devices -= 1
        return False

    def create_infer_model(self, hef_path):
        return _InferModel(hef_path)
