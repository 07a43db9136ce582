"""ONNX export of a unit, with the checks the Hailo parser's input should pass first.

Exporter: torch's legacy TorchScript exporter (``dynamo=False``).  The new torch.export-based
default needs onnxscript and rejects data-dependent shapes, and its output is optimised into
op patterns the Hailo parser has not been shown to take; the legacy exporter emits plain
Conv/ConvTranspose/Mul/ReduceMean nodes with static shapes, which is what the public Hailo
bring-up fed the DFC.  Opset 13 by default: the Hailo model zoo exports at opsets 11-13 and
13 is the oldest opset in which ReduceMean and Split take the forms used here.

The trace runs the model once on the example input; a forward hook keeps that output as the
PyTorch reference, so the onnxruntime parity check costs one onnxruntime run and no second
PyTorch forward.  MACs and output shapes are read off the shape-inferred graph.  The graph
stays in memory from the exporter to the file: checked and shape-inferred from its bytes,
written once, hashed from the same bytes (the compile cache's key) and handed to onnxruntime
without reading the file back.
"""

from __future__ import annotations

import hashlib
import io
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import write_bytes


@dataclass
class ExportResult:
    onnx_path: str
    opset: int
    seconds: float
    checker: str  # "full" when onnx.checker.check_model(full_check=True) passed
    nodes: int
    op_types: dict[str, int]
    output_shapes: list[list[int]]
    macs: int
    parity_max_abs: float | None = None
    parity_seconds: float | None = None
    # the example inputs, the PyTorch outputs seen while tracing and the file's bytes and
    # sha256 (not saved in the record)
    inputs: tuple = field(default=(), repr=False)
    reference: tuple = field(default=(), repr=False)
    onnx_bytes: bytes = field(default=b"", repr=False)
    sha256: str = field(default="", repr=False)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in _IN_MEMORY}


_IN_MEMORY = ("inputs", "reference", "onnx_bytes", "sha256")


def _dims(value_info) -> list[int]:
    return [d.dim_value for d in value_info.type.tensor_type.shape.dim]


def graph_macs(model) -> int:
    """Multiply-accumulates of the Conv/ConvTranspose nodes of a shape-inferred ONNX model."""
    shapes = {vi.name: _dims(vi) for vi in
              (*model.graph.input, *model.graph.value_info, *model.graph.output)}
    weights = {init.name: list(init.dims) for init in model.graph.initializer}
    for node in model.graph.node:  # a weight used twice may reach its second use via Identity
        if node.op_type == "Identity" and node.input[0] in weights:
            weights[node.output[0]] = weights[node.input[0]]
    total = 0
    for node in model.graph.node:
        if node.op_type not in ("Conv", "ConvTranspose") or node.input[1] not in weights:
            continue
        w = weights[node.input[1]]
        if node.op_type == "Conv":  # w: [cout, cin/groups, kh, kw]
            total += int(np.prod(shapes[node.output[0]])) * int(np.prod(w[1:]))
        else:  # w: [cin, cout/groups, kh, kw]; every input element meets the whole kernel
            total += int(np.prod(shapes[node.input[0]])) * int(np.prod(w[1:]))
    return total


def export_unit(unit, path: str | Path, opset: int = 13, seed: int = 0) -> ExportResult:
    import onnx
    import torch

    path = Path(path)
    t0 = time.perf_counter()
    inputs = unit.example_inputs(seed)
    seen: list = []
    hook = unit.module.register_forward_hook(lambda mod, args, out: seen.append(out))
    graph = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(unit.module, inputs, graph, opset_version=opset, dynamo=False,
                              input_names=[n for n, _ in unit.inputs],
                              output_names=unit.outputs, do_constant_folding=True)
    finally:
        hook.remove()
    onnx.checker.check_model(graph.getvalue(), full_check=True)
    model = onnx.shape_inference.infer_shapes(graph.getvalue(), strict_mode=True)
    data = model.SerializeToString()
    write_bytes(path, data)
    counts: dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    out = seen[0] if seen else ()
    reference = tuple(t.detach().numpy().copy() for t in (out if isinstance(out, tuple)
                                                          else (out,)))
    return ExportResult(str(path), opset, time.perf_counter() - t0, "full",
                        len(model.graph.node), dict(sorted(counts.items())),
                        [_dims(o) for o in model.graph.output], graph_macs(model),
                        inputs=tuple(x.numpy() for x in inputs), reference=reference,
                        onnx_bytes=data, sha256=hashlib.sha256(data).hexdigest())


def onnx_parity(exported: ExportResult, input_names: list[str]) -> tuple[float, float]:
    """Max |onnxruntime - torch| over all outputs on the traced input, and its seconds.  The
    session's threads sleep rather than spin between ops: one run, so spinning only burns CPU
    (a third of the run's on 2 cores)."""
    import onnxruntime as ort

    t0 = time.perf_counter()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    sess = ort.InferenceSession(exported.onnx_bytes or exported.onnx_path, opts,
                                providers=["CPUExecutionProvider"])
    outs = sess.run(None, dict(zip(input_names, exported.inputs)))
    err = max(float(np.max(np.abs(o - r))) for o, r in zip(outs, exported.reference))
    return err, time.perf_counter() - t0
