"""A TEST DOUBLE of HailoRT's ``hailo_platform`` (InferModel API and the 4.x InferVStreams
path), for tests.

It follows the calls HailoRT v4.23.0's public tutorials and ``pyhailort.py`` show (cited in
``tasnet_sweep/tiling/executors.py`` and ``tasnet_sweep/runtime/hailort_vstreams.py``) and
nothing more.  A "HEF" here is
any file named ``<x>.hef``; the double computes the unit with onnxruntime on ``<x>.onnx`` beside
it.  Like the real runtime it insists on FLOAT32 formats, C-contiguous float32 buffers shaped
exactly ``im.input().shape`` (H, W, C, no batch) and a positive timeout; ``slow_ms`` lets a test
make a run exceed its timeout.  The legacy path (``HEF``, ``ConfigureParams``,
``VDevice().configure``, ``Input/OutputVStreamParams.make``, ``InferVStreams``) insists on
FLOAT32 vstream params, an activated network group and batched NHWC float32 inputs named as
``hef.get_input_vstream_infos()`` says.  It is not a compiler and never writes a file.
"""

from __future__ import annotations

import contextlib
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

    def configure(self, hef, params):
        if not isinstance(hef, HEF) or not isinstance(params, ConfigureParams):
            raise HailoRTException("configure needs a HEF and its ConfigureParams")
        return [_NetworkGroup(hef)]


# ---- the 4.x legacy InferVStreams path ------------------------------------------------------
#: every legacy infer call: (hef path, batched input shape)
VSTREAM_LOG: list[tuple[str, tuple]] = []


class HailoStreamInterface(enum.Enum):
    PCIe = 0
    ETH = 1


class _VStreamInfo:
    def __init__(self, name, shape):
        self.name, self.shape = name, tuple(shape)


class HEF:
    def __init__(self, hef_path):
        self._model = _InferModel(hef_path)  # same validation and onnx lookup
        self.path = hef_path

    def get_input_vstream_infos(self):
        return [_VStreamInfo("net/input_layer1", self._model._input.shape)]

    def get_output_vstream_infos(self):
        return [_VStreamInfo("net/output_layer1", self._model._output.shape)]


class ConfigureParams:
    def __init__(self, hef, interface):
        self.hef, self.interface = hef, interface

    @staticmethod
    def create_from_hef(hef, interface):
        if not isinstance(interface, HailoStreamInterface):
            raise HailoRTException(f"interface must be a HailoStreamInterface, got {interface!r}")
        return ConfigureParams(hef, interface)


class _NetworkGroup:
    def __init__(self, hef):
        self.hef = hef
        self.active = False

    def create_params(self):
        return {}

    @contextlib.contextmanager
    def activate(self, params=None):
        self.active = True
        try:
            yield self
        finally:
            self.active = False


class _VStreamParams:
    def __init__(self, ng, format_type):
        self.ng, self.format_type = ng, format_type

    @classmethod
    def make(cls, ng, format_type=FormatType.AUTO, **_):
        return cls(ng, format_type)


class InputVStreamParams(_VStreamParams):
    pass


class OutputVStreamParams(_VStreamParams):
    pass


class InferVStreams:
    def __init__(self, ng, in_params, out_params):
        for p in (in_params, out_params):
            if p.format_type != FormatType.FLOAT32:
                raise HailoRTException(f"vstream format {p.format_type} was not set to FLOAT32")
        self.ng = ng

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def infer(self, inputs: dict):
        if not self.ng.active:
            raise HailoRTException("network group is not activated")
        hef = self.ng.hef
        name = hef.get_input_vstream_infos()[0].name
        if set(inputs) != {name}:
            raise HailoRTException(f"inputs {sorted(inputs)} != vstreams ['{name}']")
        x = inputs[name]
        m = hef._model
        if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.ndim != 4 \
                or tuple(x.shape[1:]) != m._input.shape:
            raise HailoRTException(f"input must be float32 NHWC (batch, *{m._input.shape}), "
                                   f"got {getattr(x, 'dtype', type(x))} {getattr(x, 'shape', '')}")
        if slow_ms > 0:
            raise HailoRTTimeout("vstream infer timed out")
        nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        y = np.concatenate([m._session.run(None, {m._input_name: nchw[i:i + 1]})[0]
                            for i in range(len(nchw))])  # a HEF keeps batch 1
        VSTREAM_LOG.append((hef.path, tuple(x.shape)))
        return {hef.get_output_vstream_infos()[0].name: y.transpose(0, 2, 3, 1)}
