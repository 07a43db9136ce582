"""Where a unit instance runs: ``torch`` (reference), ``onnxruntime``, ``hailort``.

All executors share one call: ``run(instance, x) -> y`` with ``x`` float32 NCHW
[B, cin, H, in_width] and ``y`` [B, cout, H, out_width], where every (b, h) row is one tile,
independent of the others (the stitcher passes B = sources, H = tiles; [tiles, cin, 1, w] is
the same thing with H = 1).  A unit's (1, K) kernel never mixes rows, so torch and onnxruntime
run all tiles of an instance in one call; HailoRT runs a HEF once per tile.

onnxruntime on graphs it builds itself goes further (``unit_batches``): ``run_group`` runs every
instance of a unit in a layer as one graph, their weights side by side (``group_params``), so a
layer takes one call per distinct unit instead of one per instance.  Those graphs exist only
on the CPU; what is compiled for Hailo stays one instance, batch 1 (run.py, onnx_units.py).
"""

from __future__ import annotations

import abc
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..atomic import write_bytes
from .deploy import DeviceWaves, read_hef_map
from .onnx_units import unit_model
from .weights import group_params, instance_params


class Executor(abc.ABC):
    name = ""
    #: True: the stitcher hands ``run_group`` every instance of a unit in a layer at once
    unit_batches = False

    def __init__(self, plan, params: dict):
        self.plan, self.params = plan, params
        self._op = {i.name: s.op for s in plan.npu_steps() for i in s.instances}

    def spec(self, inst):
        return self.plan.units[inst.unit]

    def weights(self, inst):
        return instance_params(self.params, inst, self._op[inst.name])

    @abc.abstractmethod
    def run(self, inst, x: np.ndarray) -> np.ndarray:
        """All tiles of one instance: [B, cin, H, w_in] -> [B, cout, H, w_out], a tile a row."""

    def close(self) -> None:  # noqa: B027 (a hook: most executors hold nothing to release)
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class TorchExecutor(Executor):
    name = "torch"

    def run(self, inst, x):
        import torch
        import torch.nn.functional as F

        spec = self.spec(inst)
        w, b = self.weights(inst)
        w, b = torch.from_numpy(w), None if b is None else torch.from_numpy(b)
        x = torch.from_numpy(np.require(x, requirements="W"))  # a read-only view is copied
        with torch.no_grad():
            if spec.op == "deconv":
                y = F.conv_transpose2d(x, w, b, stride=(1, spec.stride))
            else:
                y = F.conv2d(x, w, b, stride=(1, spec.stride),
                             dilation=(1, spec.dilation), groups=spec.groups)
        return y.numpy()


def export_instances(plan, params: dict, out_dir: Path, batch: int | None = None) -> Path:
    """Write ``<instance>.onnx`` for every instance (symbolic batch by default)."""
    ex = TorchExecutor(plan, params)
    for step in plan.npu_steps():
        for inst in step.instances:
            w, b = ex.weights(inst)
            model = unit_model(ex.spec(inst), w, b, batch=batch, name=inst.file_stem)
            write_bytes(Path(out_dir) / f"{inst.file_stem}.onnx", model.SerializeToString())
    return Path(out_dir)


def ort_options(threads: int = 1):
    """onnxruntime session options for ``threads`` intra-op threads, no spinning (hundreds of
    small sessions would fight for the cores); benchmarks give the untiled model the same."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


class OrtExecutor(Executor):
    """onnxruntime on per-instance ONNX files (from ``onnx_dir``) or graphs built in memory.

    The in-memory graphs are one Conv node per unit and layer holding every instance of the
    unit side by side (``run_group``), with the batch and height axes left symbolic, so one
    call takes every tile of the layer as rows of one image and every block the unit covers.
    Files (one per instance) run one call per instance; files exported with height 1 get the
    tiles folded into the batch axis."""

    name = "onnxruntime"

    def __init__(self, plan, params: dict, onnx_dir: Path | None = None, threads: int = 1):
        super().__init__(plan, params)
        self.onnx_dir = None if onnx_dir is None else Path(onnx_dir)
        self.unit_batches = self.onnx_dir is None
        self.threads = threads
        self._sessions: dict[str, object] = {}
        self._takes_rows: set[str] = set()

    def _open(self, source):
        import onnxruntime as ort

        return ort.InferenceSession(source, ort_options(self.threads),
                                    providers=["CPUExecutionProvider"])

    def _session(self, inst):
        sess = self._sessions.get(inst.name)
        if sess is None:
            if self.onnx_dir is not None:
                source = str(self.onnx_dir / f"{inst.file_stem}.onnx")
            else:
                w, b = self.weights(inst)
                source = unit_model(self.spec(inst), w, b, batch=None,
                                    rows=None).SerializeToString()
            sess = self._sessions[inst.name] = self._open(source)
            if sess.get_inputs()[0].shape[2] != 1:  # a symbolic height: tiles as rows
                self._takes_rows.add(inst.name)
        return sess

    def _group_session(self, step, group):
        key = f"{group.instances[0].name}+{len(group.instances)}"  # the first names the group
        sess = self._sessions.get(key)
        if sess is None:
            w, b = group_params(group, step.op, self.weights)
            cout = sum(hi - lo for lo, hi in group.outs)
            cin = cout if step.op == "depthwise" else sum(hi - lo for lo, hi in group.ins)
            spec = replace(self.spec(group.instances[0]), cin=cin, cout=cout, bias=b is not None)
            source = unit_model(spec, w, b, batch=None, rows=None).SerializeToString()
            sess = self._sessions[key] = self._open(source)
        return sess

    def warm_up(self) -> None:
        for step in self.plan.npu_steps():
            if self.unit_batches:
                for group in step.unit_groups():
                    self._group_session(step, group)
            else:
                for inst in step.instances:
                    self._session(inst)

    def run_group(self, step, group, x):
        """Every instance of ``group`` (one unit in ``step``) on ``x`` [B, cin of the group's
        input blocks, H, w_in] -> [B, cout of its output blocks, H, w_out], partial products
        over its input blocks summed."""
        sess = self._group_session(step, group)
        return sess.run(None, {"input": np.ascontiguousarray(x, np.float32)})[0]

    def run(self, inst, x):
        sess = self._session(inst)
        b, c, h, w = x.shape
        if h == 1 or inst.name in self._takes_rows:
            return sess.run(None, {"input": np.ascontiguousarray(x, np.float32)})[0]
        flat = np.ascontiguousarray(x.transpose(0, 2, 1, 3), np.float32).reshape(b * h, c, 1, w)
        y = sess.run(None, {"input": flat})[0]
        return np.ascontiguousarray(y.reshape(b, h, y.shape[1], y.shape[3]).transpose(0, 2, 1, 3))


class _HefExecutor(Executor):
    """Shared by both HailoRT paths: each instance's HEF (``hef_map.json`` in ``hef_dir`` maps
    instances to files; without it, ``<instance>.hef``), configured through ``DeviceWaves`` so
    at most ``max_configured`` network groups live on one VDevice."""

    name = "hailort"

    def __init__(self, plan, params: dict, hef_dir: Path, timeout_ms: int = 10000,
                 max_configured: int = 32):
        super().__init__(plan, params)

        self.hef_dir, self.timeout_ms = Path(hef_dir), int(timeout_ms)
        self._hef_map = read_hef_map(self.hef_dir)
        self.waves = DeviceWaves(max_configured, self._open_device, self._configure)
        self._used: set[str] = set()

    def hefs_used(self) -> int:
        """Distinct HEF files run so far."""
        return len(self._used)

    def hef_path(self, inst) -> Path:
        if self._hef_map is not None:
            name = self._hef_map.get(inst.name)
            if name is None:
                raise FileNotFoundError(f"no HEF for unit instance {inst.name}: "
                                        f"{self.hef_dir / 'hef_map.json'} does not list it")
            path = self.hef_dir / name
        else:
            path = self.hef_dir / f"{inst.file_stem}.hef"
        if not path.is_file():
            raise FileNotFoundError(f"no HEF for unit instance {inst.name}: {path}")
        self._used.add(str(path))
        return path

    def _open_device(self):
        raise NotImplementedError

    def _configure(self, vdevice, hef: str):
        raise NotImplementedError

    def close(self) -> None:
        self.waves.release()


class _ConfiguredModel:
    def __init__(self, im, configured):
        self.im, self.configured = im, configured

    def close(self) -> None:
        self.configured.shutdown()


class HailortExecutor(_HefExecutor):
    """Each instance's HEF through HailoRT's InferModel API.

    Follows HailoRT v4.23.0's tutorial (hailo-ai/hailort, ``hailo_tutorials/notebooks/
    HRT_0_Async_Inference_Tutorial.ipynb``; signatures in ``hailo_platform/pyhailort/
    pyhailort.py``): VDevice (round-robin scheduler), create_infer_model, FLOAT32 input/output,
    bindings with C-contiguous NHWC buffers shaped ``im.input().shape`` (H, W, C without batch),
    ``configured.run([bindings], timeout_ms)`` (its parameter is named ``timeout``, in ms), and
    ``ConfiguredInferModel.shutdown()`` when a wave ends.  One tile per run call: a HEF keeps
    batch 1.
    """

    def _open_device(self):
        from hailo_platform import HailoSchedulingAlgorithm, VDevice

        vparams = VDevice.create_params()
        vparams.scheduling_algorithm = HailoSchedulingAlgorithm.ROUND_ROBIN
        return VDevice(vparams)

    def _configure(self, vdevice, hef: str):
        from hailo_platform import FormatType

        im = vdevice.create_infer_model(hef)
        im.input().set_format_type(FormatType.FLOAT32)
        im.output().set_format_type(FormatType.FLOAT32)
        return _ConfiguredModel(im, im.configure())

    def run(self, inst, x):
        model = self.waves.get(str(self.hef_path(inst)))
        im, configured = model.im, model.configured
        in_shape, out_shape = tuple(im.input().shape), tuple(im.output().shape)
        spec = self.spec(inst)
        if in_shape != (1, spec.in_width, spec.cin):
            raise ValueError(f"{inst.name}: HEF input shape {in_shape} does not match the plan's "
                             f"(1, {spec.in_width}, {spec.cin})")
        n, _, rows, _ = x.shape
        y = np.empty((n, spec.cout, rows, out_shape[1]), np.float32)
        for i in range(n):
            for r in range(rows):  # one tile [cin, w] -> NHWC without batch: (1, w, cin)
                b = configured.create_bindings()
                b.input().set_buffer(np.ascontiguousarray(x[i, :, r, :].T[None], np.float32))
                b.output().set_buffer(np.empty(out_shape, np.float32))
                configured.run([b], self.timeout_ms)
                y[i, :, r, :] = np.asarray(b.output().get_buffer())[0].T
        return y


def make_executor(name: str, plan, params: dict, **kwargs) -> Executor:
    """``torch`` | ``onnxruntime`` (onnx_dir=...) | ``hailort`` (hef_dir=..., timeout_ms=...)."""
    if name == "torch":
        return TorchExecutor(plan, params)
    if name == "onnxruntime":
        return OrtExecutor(plan, params, **kwargs)
    if name == "hailort":
        return HailortExecutor(plan, params, **kwargs)
    raise ValueError(f"executor {name!r}: expected torch, onnxruntime or hailort")
