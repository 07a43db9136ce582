"""ONNX export of a unit, with the checks the Hailo parser's input should pass first.

Exporter: torch's legacy TorchScript exporter (``dynamo=False``).  The new torch.export-based
default needs onnxscript and rejects data-dependent shapes, and its output is optimised into
op patterns the Hailo parser has not been shown to take; the legacy exporter emits plain
Conv/ConvTranspose/Mul/ReduceMean nodes with static shapes, which is what the public Hailo
bring-up fed the DFC.  Opset 13 by default: the Hailo model zoo exports at opsets 11-13 and
13 is the oldest opset in which ReduceMean and Split take the forms used here.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class ExportResult:
    onnx_path: str
    opset: int
    seconds: float
    checker: str  # "full" when onnx.checker.check_model(full_check=True) passed
    nodes: int
    op_types: dict[str, int]
    parity_max_abs: float | None = None
    parity_seconds: float | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def export_unit(unit, path: str | Path, opset: int = 13, seed: int = 0) -> ExportResult:
    import onnx
    import torch

    from .atomic import write_bytes

    path = Path(path)
    t0 = time.perf_counter()
    inputs = unit.example_inputs(seed)
    tmp = path.with_name(f".{path.name}.partial")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(unit.module, inputs, str(tmp), opset_version=opset, dynamo=False,
                          input_names=[n for n, _ in unit.inputs], output_names=unit.outputs,
                          do_constant_folding=True)
    model = onnx.load(str(tmp))
    tmp.unlink()
    onnx.checker.check_model(model, full_check=True)
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    write_bytes(path, model.SerializeToString())
    counts: dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return ExportResult(str(path), opset, time.perf_counter() - t0, "full", len(model.graph.node),
                        dict(sorted(counts.items())))


def onnx_parity(unit, onnx_path: str | Path, seed: int = 1) -> tuple[float, float]:
    """Max |onnxruntime - torch| over all outputs on a fresh random input, and its seconds."""
    import onnxruntime as ort
    import torch

    t0 = time.perf_counter()
    inputs = unit.example_inputs(seed)
    with torch.no_grad():
        ref = unit.module(*inputs)
    refs = ref if isinstance(ref, tuple) else (ref,)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    feeds = {name: x.numpy() for (name, _), x in zip(unit.inputs, inputs)}
    outs = sess.run(None, feeds)
    err = max(float(np.max(np.abs(o - r.numpy()))) for o, r in zip(outs, refs))
    return err, time.perf_counter() - t0
