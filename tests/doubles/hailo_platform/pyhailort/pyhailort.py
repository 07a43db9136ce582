"""A TEST DOUBLE of HailoRT's ``hailo_platform.pyhailort.pyhailort`` (InferModel API and the 4.x
InferVStreams path), for tests.  It is not a runtime: it computes each "HEF" with onnxruntime.

It follows the calls HailoRT v4.23.0's public tutorials and ``pyhailort.py`` show (cited in
``tasnet_sweep/tiling/executors.py`` and ``tasnet_sweep/runtime/hailort_vstreams.py``), with the
behaviour a real device has that a lax double would hide:
- the exception classes live here; the package root exports only ``HailoRTException``;
- a device holds at most ``MAX_CORE_OPS`` configured network groups (core-ops) for the
  lifetime of its VDevice: releasing a configured model does not free its slot (HailoRT's
  ``VdmaDevice`` appends to ``m_core_ops`` and never erases), and the next configure raises
  ``HailoRTInvalidOperationException`` with the vdma device's own message;
- ``VDevice.create_params()`` has the round-robin scheduler on (4.x default); with it,
  ``ConfiguredNetwork.activate()`` logs HailoRT's deprecation warning and does nothing, and
  without it, inference needs an activated network group;
- a vstream infer times out only when the adapter passed ``timeout_ms`` to
  ``Input/OutputVStreamParams.make`` and the simulated duration ``slow_ms`` exceeds it; the
  InferModel path's ``run(bindings, timeout)`` does the same with its timeout.

A "HEF" is either bytes written by the ``hailo_sdk_client`` double's ``compile()`` (they embed
the compiled ONNX) or any ``<x>.hef`` file with ``<x>.onnx`` beside it.
"""

from __future__ import annotations

import base64
import contextlib
import enum
import logging
from pathlib import Path

import numpy as np

_log = logging.getLogger("HailoRT")

# ---- the double's own state, for tests (not part of HailoRT) ----------------------------------
#: every InferModel run: (hef path, input shape)
RUN_LOG: list[tuple[str, tuple]] = []
#: every legacy vstream infer: (hef path, batched input shape)
VSTREAM_LOG: list[tuple[str, tuple]] = []
#: every configure: (vdevice serial, hef path)
CONFIGURE_LOG: list[tuple[int, str]] = []
#: simulated run duration in ms; a run whose timeout is shorter raises HailoRTTimeout
slow_ms = 0
#: CONTROL_PROTOCOL__MAX_CONTEXT_SWITCH_APPLICATIONS (HailoRT 4.23, common/include/
#: control_protocol.h)
MAX_CORE_OPS = 32
#: what Device.scan() finds
DEVICES = ["0000:01:00.0"]
#: the embedded-ONNX marker of the hailo_sdk_client double's HEF bytes
HEF_MAGIC = b"TEST-DOUBLE-HEF\n"


# ---- exceptions, as pyhailort.py defines them ---------------------------------------------------
class HailoRTException(Exception):
    pass


class HailoRTTimeout(HailoRTException):
    pass


class HailoRTInvalidOperationException(HailoRTException):
    pass


class HailoRTInvalidArgumentException(HailoRTException):
    pass


class HailoRTNotFoundException(HailoRTException):
    pass


class HailoRTInvalidHEFException(HailoRTException):
    pass


class HailoRTNetworkGroupNotActivatedException(HailoRTException):
    pass


class FormatType(enum.Enum):
    AUTO = 0
    UINT8 = 1
    UINT16 = 2
    FLOAT32 = 3


class HailoSchedulingAlgorithm(enum.Enum):
    NONE = 0
    ROUND_ROBIN = 1


class HailoStreamInterface(enum.Enum):
    PCIe = 0
    ETH = 1


class _VDeviceParams:
    def __init__(self):
        self.scheduling_algorithm = HailoSchedulingAlgorithm.ROUND_ROBIN
        self.device_count = 1


# ---- a HEF: the ONNX it stands for ----------------------------------------------------------
class _Net:
    """onnxruntime over the ONNX a double HEF stands for; shapes as HailoRT reports them."""

    def __init__(self, hef_path: str):
        import onnxruntime as ort

        path = Path(hef_path)
        if path.suffix != ".hef" or not path.is_file():
            raise HailoRTInvalidHEFException(f"not a HEF file: {hef_path}")
        data = path.read_bytes()
        if data.startswith(HEF_MAGIC):
            onnx = base64.b64decode(data[len(HEF_MAGIC):])
        elif path.with_suffix(".onnx").is_file():
            onnx = path.with_suffix(".onnx").read_bytes()
        else:
            raise HailoRTInvalidHEFException(f"test double needs {path.with_suffix('.onnx').name}"
                                             " beside the HEF, or HEF bytes from the SDK double")
        self.path = str(path)
        self.session = ort.InferenceSession(onnx, providers=["CPUExecutionProvider"])
        i, o = self.session.get_inputs()[0], self.session.get_outputs()[0]
        self.input_name = i.name
        self.input_shape, self.output_shape = self._hwc(i.shape), self._hwc(o.shape)

    @staticmethod
    def _hwc(nchw):
        _, c, h, w = nchw
        return (h, w, c)

    def nchw(self, x_nhwc: np.ndarray) -> np.ndarray:
        """Batched NHWC in, batched NHWC out (a HEF keeps batch 1: frame by frame)."""
        nchw = np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))
        y = np.concatenate([self.session.run(None, {self.input_name: nchw[i:i + 1]})[0]
                            for i in range(len(nchw))])
        return y.transpose(0, 2, 3, 1)


# ---- InferModel API -------------------------------------------------------------------------
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


class ConfiguredInferModel:
    def __init__(self, im):
        self.im = im
        self._shut = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def shutdown(self):
        self._shut = True  # the core-op slot stays taken until the VDevice is released

    def create_bindings(self):
        return _Bindings(self.im)

    def run(self, bindings, timeout):
        if self._shut or self.im.vdevice.released:
            raise HailoRTException("the configured model was shut down or its VDevice released")
        if not isinstance(timeout, int) or timeout <= 0:
            raise HailoRTException(f"timeout must be a positive int (ms), got {timeout!r}")
        if slow_ms > timeout:
            raise HailoRTTimeout(f"run took longer than {timeout} ms")
        for fmt in (self.im._input.format_type, self.im._output.format_type):
            if fmt != FormatType.FLOAT32:
                raise HailoRTException(f"format {fmt} was not set to FLOAT32")
        for b in bindings:
            x = b.input().get_buffer()
            if x is None or b.output().get_buffer() is None:
                raise HailoRTException("input and output buffers must be set before run")
            b.output().get_buffer()[...] = self.im._net.nchw(x[None])[0]
            RUN_LOG.append((self.im._net.path, tuple(x.shape)))


class InferModel:
    def __init__(self, vdevice, hef_path: str):
        self.vdevice = vdevice
        self._net = _Net(hef_path)
        self.hef_path = self._net.path
        self._input = _Stream(self._net.input_shape)
        self._output = _Stream(self._net.output_shape)

    def input(self, name=None):
        return self._input

    def output(self, name=None):
        return self._output

    def configure(self):
        self.vdevice._add_core_op(self.hef_path)
        return ConfiguredInferModel(self)


class Device:
    @staticmethod
    def scan():
        return list(DEVICES)


class VDevice:
    open_devices = 0
    _serial = 0

    def __init__(self, params=None, *, device_ids=None):
        if not DEVICES:
            raise HailoRTNotFoundException("no Hailo device found")
        self.params = params if params is not None else VDevice.create_params()
        VDevice._serial += 1
        self.serial = VDevice._serial
        self.core_ops = 0
        self.released = False
        VDevice.open_devices += 1

    @staticmethod
    def create_params():
        return _VDeviceParams()

    @property
    def scheduled(self) -> bool:
        return self.params.scheduling_algorithm != HailoSchedulingAlgorithm.NONE

    def __enter__(self):
        return self

    def release(self):
        if not self.released:
            self.released = True
            VDevice.open_devices -= 1

    def __exit__(self, *exc):
        self.release()
        return False

    def _add_core_op(self, hef_path: str) -> None:
        if self.released:
            raise HailoRTException("VDevice was released")
        if self.core_ops + 1 > MAX_CORE_OPS:  # vdma_device.cpp's check and wording
            raise HailoRTInvalidOperationException(
                f"Can't add 1 core-ops from HEF. Currently {self.core_ops} core-ops are "
                f"configured; maximum allowed core-ops: {MAX_CORE_OPS}.")
        self.core_ops += 1
        CONFIGURE_LOG.append((self.serial, hef_path))

    def create_infer_model(self, hef_source, name=""):
        return InferModel(self, hef_source)

    def configure(self, hef, configure_params_by_name={}):  # noqa: B006 (HailoRT's own signature)
        if not isinstance(hef, HEF):
            raise HailoRTException("configure needs a HEF")
        for p in configure_params_by_name.values():
            if not isinstance(p, _ConfigureParams):
                raise HailoRTException("configure params must come from "
                                       "ConfigureParams.create_from_hef")
        self._add_core_op(hef.path)
        return [ConfiguredNetwork(hef, self)]


# ---- the 4.x legacy InferVStreams path ------------------------------------------------------
class _VStreamInfo:
    def __init__(self, name, shape):
        self.name, self.shape = name, tuple(shape)


class HEF:
    def __init__(self, hef_source):
        self._net = _Net(hef_source)
        self.path = self._net.path

    def get_network_group_names(self):
        return ["net"]

    def get_input_vstream_infos(self, network_name=None):
        return [_VStreamInfo("net/input_layer1", self._net.input_shape)]

    def get_output_vstream_infos(self, network_name=None):
        return [_VStreamInfo("net/output_layer1", self._net.output_shape)]


class _ConfigureParams:
    def __init__(self, interface):
        self.interface = interface


class ConfigureParams:
    @staticmethod
    def create_from_hef(hef, interface):
        if not isinstance(interface, HailoStreamInterface):
            raise HailoRTException(f"interface must be a HailoStreamInterface, got {interface!r}")
        return {name: _ConfigureParams(interface) for name in hef.get_network_group_names()}


class ConfiguredNetwork:
    def __init__(self, hef, vdevice):
        self.hef, self.vdevice = hef, vdevice
        self.active = False

    def create_params(self):
        return {}

    def activate(self, network_group_params=None):
        if self.vdevice.scheduled:  # pyhailort.py's wording
            _log.warning("Calls to `activate()` when working with scheduler are deprecated! On "
                         "future versions this call will raise an error.")
            return contextlib.nullcontext()
        return self._activated()

    @contextlib.contextmanager
    def _activated(self):
        self.active = True
        try:
            yield self
        finally:
            self.active = False


class _VStreamParams:
    def __init__(self, ng, quantized, format_type, timeout_ms, queue_size, network_name):
        self.ng, self.format_type, self.timeout_ms = ng, format_type, timeout_ms

    @classmethod
    def make(cls, configured_network, quantized=None, format_type=None, timeout_ms=None,
             queue_size=None, network_name=None):
        """pyhailort.py 4.23's signature; ``quantized`` is documented as unused."""
        return cls(configured_network, quantized, format_type, timeout_ms, queue_size,
                   network_name)


class InputVStreamParams(_VStreamParams):
    pass


class OutputVStreamParams(_VStreamParams):
    pass


class InferVStreams:
    def __init__(self, configured_net_group, input_vstreams_params, output_vstreams_params,
                 tf_nms_format=False):
        for p in (input_vstreams_params, output_vstreams_params):
            if p.format_type != FormatType.FLOAT32:
                raise HailoRTException(f"vstream format {p.format_type} was not set to FLOAT32")
        self.ng = configured_net_group
        self._in, self._out = input_vstreams_params, output_vstreams_params

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def infer(self, input_data):
        ng = self.ng
        if ng.vdevice.released:
            raise HailoRTException("the network group's VDevice was released")
        if not ng.vdevice.scheduled and not ng.active:
            raise HailoRTNetworkGroupNotActivatedException("network group is not activated")
        hef = ng.hef
        name = hef.get_input_vstream_infos()[0].name
        if set(input_data) != {name}:
            raise HailoRTException(f"inputs {sorted(input_data)} != vstreams ['{name}']")
        x = input_data[name]
        net = hef._net
        if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.ndim != 4 \
                or tuple(x.shape[1:]) != net.input_shape:
            raise HailoRTException(f"input must be float32 NHWC (batch, *{net.input_shape}), "
                                   f"got {getattr(x, 'dtype', type(x))} {getattr(x, 'shape', '')}")
        timeouts = [p.timeout_ms for p in (self._in, self._out) if p.timeout_ms is not None]
        if timeouts and slow_ms > min(timeouts):
            raise HailoRTTimeout(f"vstream infer took longer than {min(timeouts)} ms")
        VSTREAM_LOG.append((hef.path, tuple(x.shape)))
        return {hef.get_output_vstream_infos()[0].name: net.nchw(x)}
