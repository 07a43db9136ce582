"""TEST DOUBLE: ``FakeClientRunner``, standing in for ``hailo_sdk_client.ClientRunner``.

It is not a compiler.  It enforces what the README documents (state order, NCHW input shapes at
translate, NHWC float32 calibration at optimize, ``compile`` only after ``optimize``), prints
the documented log lines, returns placeholder bytes from ``compile`` and records every call.

Environment variables (all optional):
- ``HAILO_DOUBLE_LOG``: append one JSON line per call (method, arguments, pid) to this file;
- ``HAILO_DOUBLE_FAIL=<method>:<ExceptionClass>:<message>``: raise that exception there;
- ``HAILO_DOUBLE_HANG=<method>``: start a sleeping grandchild (its pid is logged), then hang;
- ``HAILO_DOUBLE_CRASH=<method>:segv|kill|exit<N>``: die there by that signal or exit code;
- ``HAILO_DOUBLE_CONTEXTS=<n>``: the number of contexts the compile log reports (default 1);
- ``HAILO_DOUBLE_VERSION``: ``__version__`` (default 3.33.0; ``none``: no attribute);
- ``HAILO_DOUBLE_ONLY_NETS=<net>,<net>``: fail/hang/crash only for these net names (one sweep
  can then mix good and bad trials).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from .exposed_definitions import States
from .model_translator import exceptions as translator_exc
from .optimization_exceptions import BadInputsShape, NegativeSlopeExponentNonFixable
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
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        _record("hang", sleeper_pid=sleeper.pid)
        while True:
            time.sleep(1)
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


class FakeClientRunner:
    """TEST DOUBLE for ``ClientRunner``: checks and records calls, compiles nothing."""

    def __init__(self, hw_arch: str = "hailo8", har: str | None = None):
        _record("__init__", hw_arch=hw_arch, har=har)
        if hw_arch not in ARCHS:
            raise ValueError(f"hw_arch {hw_arch!r} is not one of {ARCHS}")
        self.hw_arch = hw_arch
        self._state = States.UNINITIALIZED
        self._net = None
        self._inputs: dict[str, tuple[int, int, int]] = {}  # input layer -> NHWC (H, W, C)
        self._script: list[str] = []

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
        for k, name in enumerate(start_node_names, start=1):
            n, c, h, w = net_input_shapes[name]  # NCHW -> NHWC
            self._inputs[f"{net_name}/input_layer{k}"] = (h, w, c)
        self._state = States.HAILO_MODEL
        return self.get_hn_dict(), None

    def get_hn_dict(self) -> dict:
        layers = {name: {"type": "input_layer", "input_shapes": [[-1, *shape]]}
                  for name, shape in self._inputs.items()}
        return {"name": self._net, "layers": layers}

    def save_har(self, path):
        _record("save_har", path=str(path), state=self._state.value)
        _misbehave("save_har")
        Path(path).write_text(json.dumps({"test_double_har": True, "state": self._state.value,
                                          "net": self._net}))

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
        return b"TEST-DOUBLE-HEF (not compiled): " + self._net.encode()

    @contextlib.contextmanager
    def infer_context(self, context):
        yield context

    def infer(self, context, data):
        raise NotImplementedError("the test double does not emulate networks")


def _onnx_io(model) -> tuple[dict[str, list[int]], list[str]]:
    """The ONNX graph's input shapes and output names (onnx is installed wherever tests run)."""
    import onnx

    graph = onnx.load(str(model)).graph
    inputs = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}
    return inputs, [o.name for o in graph.output]
