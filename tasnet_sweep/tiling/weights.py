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


def group_params(group, op: str, weights) -> tuple[np.ndarray, np.ndarray | None]:
    """(weight, bias or None) of a ``UnitGroup`` as one layer: its instances' weights
    (``weights(inst) -> (w, b)``) side by side, in the ONNX layout of ``op``, so the graph's
    output is every output block of the group with the partial sums over its input blocks
    done (a bias is summed over the input blocks that carry it, as the instances add it)."""
    got = {(i.out_block, i.in_block): weights(i) for i in group.instances}
    if op == "depthwise":
        w = np.concatenate([got[(o, o)][0] for o in group.outs])
        parts = [[got[(o, o)][1]] for o in group.outs]
    elif op == "conv":  # [cout, cin, 1, K]
        w = np.concatenate([np.concatenate([got[(o, i)][0] for i in group.ins], axis=1)
                            for o in group.outs])
        parts = [[got[(o, i)][1] for i in group.ins] for o in group.outs]
    elif op == "deconv":  # [cin, cout, 1, K]
        w = np.concatenate([np.concatenate([got[(o, i)][0] for o in group.outs], axis=1)
                            for i in group.ins])
        parts = [[got[(o, i)][1] for i in group.ins] for o in group.outs]
    else:
        raise ValueError(f"unknown NPU op {op!r}")
    if all(b is None for row in parts for b in row):
        return np.ascontiguousarray(w), None
    bias = np.concatenate([sum(b for b in row if b is not None) for row in parts])
    return np.ascontiguousarray(w), bias.astype(np.float32)
