"""ONNX graphs of tiled units: one Conv / ConvTranspose node on NCHW [B, C, 1, W].

Written with onnx.helper rather than torch.onnx.export: a plan has hundreds of weight
instances and building them directly takes milliseconds.  The node is the same plain
Conv/ConvTranspose with (1, K) kernels and static shapes that the legacy exporter emits for a
Conv2d, which is the form the Hailo parser takes.  ``batch=None`` gives a symbolic batch axis
(the onnxruntime executor runs every tile of an instance in one call); the graph compiled for
Hailo keeps batch 1.
"""

from __future__ import annotations

import numpy as np

OPSET = 13


def unit_model(spec, weight: np.ndarray, bias: np.ndarray | None, batch: int | None = 1,
               name: str = "unit", rows: int | None = 1):
    """``rows=None`` leaves the height axis symbolic too: a (1, K) kernel treats every row
    as its own tile, so onnxruntime can take many tiles as one image."""
    from onnx import TensorProto, helper, numpy_helper

    b = batch if batch is not None else "tiles"
    h = rows if rows is not None else "rows"
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                      [b, spec.cin, h, spec.in_width])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT,
                                      [b, spec.cout, h, spec.out_width])
    inits = [numpy_helper.from_array(weight.astype(np.float32), "weight")]
    inputs = ["input", "weight"]
    if bias is not None:
        inits.append(numpy_helper.from_array(bias.astype(np.float32), "bias"))
        inputs.append("bias")
    attrs = {"kernel_shape": [1, spec.kernel], "strides": [1, spec.stride],
             "pads": [0, 0, 0, 0]}
    if spec.op == "deconv":
        node = helper.make_node("ConvTranspose", inputs, ["output"], **attrs)
    else:
        node = helper.make_node("Conv", inputs, ["output"], dilations=[1, spec.dilation],
                                group=spec.groups, **attrs)
    graph = helper.make_graph([node], name, [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="tasnet_sweep.tiling")
    model.ir_version = 8
    return model


def checked_bytes(model) -> bytes:
    """Serialized model after the ONNX checker and strict shape inference."""
    import onnx

    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, strict_mode=True)
    return model.SerializeToString()
