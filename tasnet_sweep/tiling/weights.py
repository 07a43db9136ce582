"""The weights of a unit instance and of host ops, sliced from a model's state_dict."""

from __future__ import annotations

import numpy as np


def model_params(model) -> dict[str, np.ndarray]:
    """Every parameter of a ConvTasNet as float32 numpy arrays, by state_dict name."""
    return {k: v.detach().cpu().numpy().astype(np.float32)
            for k, v in model.state_dict().items()}


def instance_params(params: dict, inst, op: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(weight, bias or None) of one instance; weight in the ONNX layout of its op.

    conv: [cout, cin, 1, K]; depthwise: [c, 1, 1, K]; deconv: [cin, cout, 1, K].
    """
    (oa, ob), (ia, ib) = inst.out_block, inst.in_block
    w = params[f"{inst.layer}.weight"]
    if op == "conv":
        w = w[oa:ob, ia:ib]
    elif op == "depthwise":
        w = w[oa:ob]
    elif op == "deconv":
        w = w[ia:ib, oa:ob]
    else:
        raise ValueError(f"unknown NPU op {op!r}")
    bias = params.get(f"{inst.layer}.bias") if inst.bias else None
    return np.ascontiguousarray(w), (None if bias is None else np.ascontiguousarray(bias[oa:ob]))
