"""TEST DOUBLE: ``FakeClientRunner``, standing in for ``hailo_sdk_client.ClientRunner``.

It is not a compiler.  It enforces what public Hailo code shows (state order, NCHW input shapes at
translate, NHWC float32 calibration at optimize, ``compile`` only after ``optimize``), prints
the documented log lines, returns placeholder bytes from ``compile`` and records every call.

Its HAR is a JSON file holding the translated ONNX and, once optimized, each input's calibrated
|max|; ``ClientRunner(hw_arch=..., har=path)`` loads it (``har_path=`` for DFC <= 3.25, as
older public examples call it).  ``infer`` inside ``infer_context`` emulates the net
numerically (see ``_emulate``): it runs the ONNX with onnxruntime, and for SDK_QUANTIZED /
SDK_BIT_EXACT rounds weights, input and output to an 8-bit grid.  That is a stand-in for the
DFC's emulator, nothing like its real numerics.

Environment variables (all optional):
- ``HAILO_DOUBLE_LOG``: append one JSON line per call (method, arguments, pid) to this file;
- ``HAILO_DOUBLE_FAIL=<method>:<ExceptionClass>:<message>``: raise that exception there;
- ``HAILO_DOUBLE_HANG=<method>``: start a sleeping grandchild (its pid is logged), then hang;
  with ``HAILO_DOUBLE_HANG_FIFO=<fifo>`` also write "<pid> <grandchild pid>" to that FIFO;
- ``HAILO_DOUBLE_CRASH=<method>:segv|kill|exit<N>``: die there by that signal or exit code;
- ``HAILO_DOUBLE_CONTEXTS=<n>``: the number of contexts the compile log reports (default 1);
- ``HAILO_DOUBLE_VERSION``: ``__version__`` (default 3.33.0; ``none``: no attribute);
- ``HAILO_DOUBLE_ONLY_NETS=<net>,<net>``: fail/hang/crash only for these net names (one sweep
  can then mix good and bad trials);
- ``HAILO_DOUBLE_SIGNATURE=no_net_input_shapes``: ``translate_onnx_model`` without that keyword
  (an SDK whose signature differs from what the adapter calls).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from hailo_model_optimization.acceleras.utils.acceleras_exceptions import (
    BadInputsShape,
    NegativeSlopeExponentNonFixable,
)

from .exposed_definitions import InferenceContext, States
from .model_translator import exceptions as translator_exc
from .sdk_backend import sdk_backend_exceptions as backend_exc

EXCEPTIONS = {cls.__name__: cls for cls in (
    translator_exc.ParsingWithRecommendationException, translator_exc.UnsupportedModelError,
    backend_exc.BackendAllocatorException, backend_exc.BackendRuntimeException,
    backend_exc.BackendScriptParserException, BadInputsShape, NegativeSlopeExponentNonFixable,
    MemoryError, RuntimeError)}
ARCHS = ("hailo8", "hailo8l", "hailo8r", "hailo15h", "hailo15m", "hailo15l", "hailo10h")


def _summary(value):
    """JSON-able description of an argument (arrays by shape and dtype)."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return {"array_shape": list(value.shape), "dtype": str(value.dtype)}
    if isinstance(value, dict):
        return {str(k): _summary(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_summary(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def _record(method: str, **args) -> None:
    path = os.environ.get("HAILO_DOUBLE_LOG")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"method": method, "pid": os.getpid(), "args": _summary(args)})
                    + "\n")


_CURRENT_NET: list[str] = []  # the net being translated in this process


def _misbehave(method: str) -> None:
    """Fail, hang or crash in ``method`` when the environment asks for it."""
    only = [n for n in os.environ.get("HAILO_DOUBLE_ONLY_NETS", "").split(",") if n]
    if only and not set(only) & set(_CURRENT_NET):
        return
    fail = os.environ.get("HAILO_DOUBLE_FAIL", "")
    if fail.startswith(method + ":"):
        _, cls, message = fail.split(":", 2)
        raise EXCEPTIONS[cls](message)
    if os.environ.get("HAILO_DOUBLE_HANG") == method:
        # block until killed, with a grandchild that does the same (it must go with the group)
        sleeper = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
        _record("hang", sleeper_pid=sleeper.pid)
        fifo = os.environ.get("HAILO_DOUBLE_HANG_FIFO")
        if fifo:  # tell a waiting test, through the FIFO it reads, that the hang has begun
            with open(fifo, "w") as f:
                f.write(f"{os.getpid()} {sleeper.pid}\n")
        while True:
            signal.pause()
    crash = os.environ.get("HAILO_DOUBLE_CRASH", "")
    if crash.startswith(method + ":"):
        how = crash.split(":", 1)[1]
        sys.stdout.flush()
        if how == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
        elif how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        else:
            os._exit(int(how.removeprefix("exit")))


class _HnLayer:
    def __init__(self, name: str, scope: str):
        self.name, self.scope = name, scope


class _HnModel:
    """What ``runner.get_hn_model()`` returns, as far as the model zoo uses it."""

    def __init__(self, inputs: list[_HnLayer]):
        self._inputs = inputs

    def get_input_layers(self):
        return list(self._inputs)


class FakeClientRunner:
    """TEST DOUBLE for ``ClientRunner``: checks and records calls, compiles nothing."""

    def __init__(self, hw_arch: str = "hailo8", **load):
        _record("__init__", hw_arch=hw_arch, **load)
        if hw_arch not in ARCHS:
            raise ValueError(f"hw_arch {hw_arch!r} is not one of {ARCHS}")
        self.hw_arch = hw_arch
        self._state = States.UNINITIALIZED
        self._net = None
        self._inputs: dict[str, tuple[int, int, int]] = {}  # input layer -> NHWC (H, W, C)
        self._original: dict[str, str] = {}  # input layer -> its ONNX input name
        self._script: list[str] = []
        self._onnx: bytes | None = None  # the translated graph (a real HAR holds the network)
        self._input_max: dict[str, float] = {}  # input layer -> calibrated |max| (optimize)
        keyword = "har_path" if _old_loader() else "har"
        unexpected = sorted(set(load) - {keyword})
        if unexpected:  # Python's own wording for a keyword the signature does not have
            raise TypeError(f"__init__() got an unexpected keyword argument '{unexpected[0]}'")
        if load.get(keyword) is not None:
            self._load_har(load[keyword])

    def _load_har(self, path) -> None:
        # the real SDK's error for a missing or foreign HAR is not documented: a plain error here
        har = json.loads(Path(path).read_text())
        if not har.get("test_double_har"):
            raise ValueError(f"{path} is not a HAR written by this test double")
        self._state = States(har["state"])
        self._net = har["net"]
        self._inputs = {k: tuple(v) for k, v in har["inputs"].items()}
        self._original = dict(har.get("original", {}))
        self._onnx = base64.b64decode(har["onnx"]) if har.get("onnx") else None
        self._input_max = har.get("input_max_abs", {})

    @property
    def state(self) -> States:
        return self._state

    def translate_onnx_model(self, model, net_name, start_node_names=None, end_node_names=None,
                             net_input_shapes=None):
        _record("translate_onnx_model", model=str(model), net_name=net_name,
                start_node_names=start_node_names, end_node_names=end_node_names,
                net_input_shapes=net_input_shapes)
        if self._state != States.UNINITIALIZED:
            raise RuntimeError("translate_onnx_model called twice")
        _CURRENT_NET.append(net_name)
        _misbehave("translate_onnx_model")
        graph_inputs, graph_outputs = _onnx_io(model)
        for name in start_node_names or []:
            shape = (net_input_shapes or {}).get(name)
            if name not in graph_inputs or shape is None or list(shape) != graph_inputs[name]:
                raise translator_exc.ParsingWithRecommendationException(
                    f"Parsing failed. The errors found in the graph are: start node {name} with "
                    f"shape {shape} is not an input of the graph {graph_inputs}. Please try to "
                    f"parse the model again, using these start node names: {list(graph_inputs)}")
        for name in end_node_names or []:
            if name not in graph_outputs:
                raise translator_exc.ParsingWithRecommendationException(
                    f"Parsing failed. The errors found in the graph are: {name} is not an output."
                    f" Please try to parse the model again, using these end node names: "
                    f"{graph_outputs}")
        self._net = net_name
        self._onnx = Path(model).read_bytes()
        # The parser numbers input layers its own way; the double numbers them from the last
        # start node, so an adapter that assumes start-node order calibrates the wrong layer.
        # Names come only from get_hn_model().get_input_layers() (as the model zoo reads them),
        # and each layer's ONNX name from the HN's "original_names".
        for k, name in enumerate(reversed(start_node_names), start=1):
            n, c, h, w = net_input_shapes[name]  # NCHW -> NHWC
            self._inputs[f"{net_name}/input_layer{k}"] = (h, w, c)
            self._original[f"{net_name}/input_layer{k}"] = name
        self._state = States.HAILO_MODEL
        return self.get_hn_dict(), None

    def get_hn_dict(self) -> dict:
        layers = {name: {"type": "input_layer", "input_shapes": [[-1, *shape]],
                         "original_names": [self._original.get(name, "")]}
                  for name, shape in self._inputs.items()}
        return {"name": self._net, "layers": layers}

    def get_hn_model(self):
        _record("get_hn_model")
        return _HnModel([_HnLayer(name, self._net) for name in self._inputs])

    def save_har(self, path):
        _record("save_har", path=str(path), state=self._state.value)
        _misbehave("save_har")
        Path(path).write_text(json.dumps({
            "test_double_har": True, "state": self._state.value, "net": self._net,
            "hw_arch": self.hw_arch, "inputs": {k: list(v) for k, v in self._inputs.items()},
            "original": self._original,
            "onnx": base64.b64encode(self._onnx).decode() if self._onnx else None,
            "input_max_abs": self._input_max}))

    def load_model_script(self, text_or_path, append: bool = False):
        text = Path(text_or_path).read_text() if os.path.isfile(str(text_or_path)) \
            else str(text_or_path)
        _record("load_model_script", text=text, append=append)
        _misbehave("load_model_script")
        for line in text.splitlines():
            if line.strip() and not re.fullmatch(r"\s*\w+\(.*\)\s*(#.*)?", line):
                raise backend_exc.BackendScriptParserException(f"Parsing failed at: >!<{line}")
        self._script = (self._script if append else []) + text.splitlines()

    def optimize(self, calib):
        _record("optimize", calib=calib)
        if self._state != States.HAILO_MODEL:
            raise RuntimeError(f"optimize in state {self._state.value}")
        _misbehave("optimize")
        named = calib if isinstance(calib, dict) else {next(iter(self._inputs)): calib}
        if sorted(named) != sorted(self._inputs):
            raise ValueError(f"calibration keys {sorted(named)} != input layers "
                             f"{sorted(self._inputs)}")
        frames = None
        for name, data in named.items():
            if str(data.dtype) != "float32" or tuple(data.shape[1:]) != self._inputs[name]:
                raise BadInputsShape(f"Data shape {tuple(data.shape[1:])} for layer {name} "
                                     f"doesn't match network's input shape {self._inputs[name]}")
            frames = data.shape[0]
            self._input_max[name] = float(abs(data).max())
        if frames < 1024:
            print("Reducing optimization level to 0 because there's less data than the "
                  "recommended amount (1024), and there's no available GPU", flush=True)
        self._state = States.QUANTIZED_MODEL

    def compile(self):
        _record("compile", state=self._state.value)
        _misbehave("compile")
        if self._state != States.QUANTIZED_MODEL:
            raise backend_exc.BackendRuntimeException(
                "Model requires quantized weights in order to run on HW, but none were given. "
                "Did you forget to quantize?")
        contexts = int(os.environ.get("HAILO_DOUBLE_CONTEXTS", "1"))
        print("Trying to compile the network in a single context", flush=True)
        if contexts == 1:
            print("Using Single-context flow", flush=True)
        else:
            print("Using Multi-context flow", flush=True)
            print(f"Found valid partition to {contexts} contexts", flush=True)
        print("Successful Mapping\nSuccessful Compilation", flush=True)
        self._state = States.COMPILED_MODEL
        # not a HEF: a marker and the translated ONNX, which the hailo_platform double runs
        return b"TEST-DOUBLE-HEF\n" + base64.b64encode(self._onnx or b"")

    @contextlib.contextmanager
    def infer_context(self, context):
        _record("infer_context", context=InferenceContext(context).value)
        ctx = _InferContext(InferenceContext(context))
        try:
            yield ctx
        finally:
            ctx.open = False

    def infer(self, context, data):
        """The net's output (NHWC, batch first) for NHWC float32 ``data``, emulated (see module).

        Not documented, so a guess: the data check raises the same ``BadInputsShape`` text as
        ``optimize``, and a quantized context on an unquantized model raises a plain error."""
        _record("infer", context=getattr(getattr(context, "context", None), "value", None),
                data=data)
        if not isinstance(context, _InferContext) or not context.open:
            raise RuntimeError("infer needs the context object of an open runner.infer_context")
        _misbehave("infer")
        if self._onnx is None:
            raise RuntimeError(f"infer in state {self._state.value}: no model loaded")
        quantized = context.context in (InferenceContext.SDK_QUANTIZED,
                                        InferenceContext.SDK_BIT_EXACT)
        if quantized and self._state not in (States.QUANTIZED_MODEL, States.COMPILED_MODEL):
            raise RuntimeError(f"{context.context.name} needs a quantized model, the runner is "
                               f"in state {self._state.value}")
        named = data if isinstance(data, dict) else {next(iter(self._inputs)): data}
        if sorted(named) != sorted(self._inputs):
            raise ValueError(f"input keys {sorted(named)} != input layers {sorted(self._inputs)}")
        for name, x in named.items():
            if str(x.dtype) != "float32" or x.ndim != 4 or tuple(x.shape[1:]) != self._inputs[name]:
                raise BadInputsShape(f"Data shape {tuple(x.shape[1:])} for layer {name} "
                                     f"doesn't match network's input shape {self._inputs[name]}")
        return _emulate(self._onnx, [named[k] for k in self._inputs],
                        [self._input_max.get(k) for k in self._inputs] if quantized else None)


class _InferContext:
    """What ``infer_context`` yields: the context kind, usable only inside the ``with``."""

    def __init__(self, context: InferenceContext):
        self.context, self.open = context, True


def _old_loader() -> bool:
    """DFC <= 3.25 loads a HAR with ``har_path=`` (README), later ones with ``har=``."""
    m = re.match(r"(\d+)\.(\d+)", os.environ.get("HAILO_DOUBLE_VERSION", "3.33.0"))
    return bool(m) and (int(m.group(1)), int(m.group(2))) <= (3, 25)


def _grid(x, max_abs: float, bits: int = 8):
    import numpy as np

    scale = max(float(max_abs), 1e-12) / (2 ** (bits - 1) - 1)
    top = 2 ** (bits - 1) - 1
    return (np.clip(np.round(x / scale), -top, top) * scale).astype(np.float32)


def _emulate(onnx_bytes: bytes, inputs: list, input_max: list | None):
    """Run the translated ONNX frame by frame (its batch is 1).  ``input_max`` given: emulate
    int8 -- weights (initializers of rank >= 2) and each input rounded on a per-tensor grid
    (the input's from calibration), the output on the grid of its own |max|."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    model = onnx.load_from_string(onnx_bytes)
    if input_max is not None:
        for init in model.graph.initializer:
            w = numpy_helper.to_array(init)
            if w.ndim >= 2:
                init.CopyFrom(numpy_helper.from_array(_grid(w, np.abs(w).max()), init.name))
        inputs = [_grid(x, m if m is not None else np.abs(x).max())
                  for x, m in zip(inputs, input_max)]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    frames = []
    for n in range(inputs[0].shape[0]):  # NHWC -> the ONNX's NCHW and back
        feed = {name: np.ascontiguousarray(x[n:n + 1].transpose(0, 3, 1, 2))
                for name, x in zip(names, inputs)}
        frames.append(sess.run(None, feed)[0].transpose(0, 2, 3, 1))
    y = np.concatenate(frames).astype(np.float32)
    return y if input_max is None else _grid(y, np.abs(y).max())


def _onnx_io(model) -> tuple[dict[str, list[int]], list[str]]:
    """The ONNX graph's input shapes and output names (onnx is installed wherever tests run)."""
    import onnx

    graph = onnx.load(str(model)).graph
    inputs = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}
    return inputs, [o.name for o in graph.output]


if os.environ.get("HAILO_DOUBLE_SIGNATURE") == "no_net_input_shapes":
    # an SDK whose translate_onnx_model has no net_input_shapes keyword (the shape of a call an
    # adapter may not expect): calls with it fail as Python fails them
    _translate_with_shapes = FakeClientRunner.translate_onnx_model

    def _translate_without_shapes(self, model, net_name, start_node_names=None,
                                  end_node_names=None):
        return _translate_with_shapes(self, model, net_name, start_node_names, end_node_names)

    FakeClientRunner.translate_onnx_model = _translate_without_shapes
