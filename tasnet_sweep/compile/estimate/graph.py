"""Read an ONNX graph as the Hailo parser would see it: a list of layers in NHWC.

A 1-D latent tensor ``[1, C, 1, W]`` (NCHW) becomes NHWC ``(H=1, W, C)``.  Conv becomes ``conv``,
``dw`` (groups == channels) or a grouped ``conv``; ConvTranspose becomes ``deconv``; an
activation right after a conv whose output nothing else reads is fused into it, as the DFC
does; every other activation, elementwise op, norm piece or shape op is a layer of its own.
Constant sub-graphs (initializers, ``Constant``, Identity of a weight) are folded away.

Layer names follow the DFC's ``<net>/<type><n>`` pattern.  Public DFC logs and HN files show
``input_layer``, ``conv``, ``dw``, ``deconv`` and ``output_layer``; the other type names here
(``ew_add``, ``reduce_mean``, ``feature_splitter``, ...) are our best reading of the HN types,
not verified.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FAMILIES = ("input", "output", "conv", "dw", "deconv", "activation", "elementwise", "norm",
            "shape")
#: layer families that run on the conv datapath (their row buffer may span several clusters)
CONV_FAMILIES = frozenset({"conv", "dw", "deconv"})

_ACTIVATIONS = {"Relu": "relu", "PRelu": "prelu", "Sigmoid": "sigmoid", "LeakyRelu": "leaky",
                "Tanh": "tanh", "Clip": "relu6", "Elu": "elu", "HardSigmoid": "hardsigmoid",
                "HardSwish": "hardswish", "Softplus": "softplus", "Exp": "exp", "Log": "log",
                "Abs": "abs", "Neg": "neg", "Softmax": "softmax", "Erf": "erf"}
_ELEMENTWISE = {"Add": "ew_add", "Sub": "ew_sub", "Mul": "ew_mult", "Div": "ew_div",
                "Max": "ew_max", "Min": "ew_min"}
_NORM = {"ReduceMean": "reduce_mean", "ReduceSum": "reduce_sum", "ReduceMax": "reduce_max",
         "ReduceL2": "reduce_l2", "GlobalAveragePool": "global_avg_pool", "Pow": "pow",
         "Sqrt": "sqrt", "Reciprocal": "reciprocal", "BatchNormalization": "normalization",
         "InstanceNormalization": "instance_norm", "LayerNormalization": "layer_norm"}
_SHAPE = {"Identity": "identity", "Concat": "concat", "Split": "feature_splitter",
          "Slice": "slice", "Reshape": "reshape", "Transpose": "transpose",
          "Flatten": "reshape", "Squeeze": "reshape", "Unsqueeze": "reshape", "Pad": "pad",
          "Resize": "resize", "Upsample": "resize", "Dropout": "identity"}
#: nodes whose outputs are static whatever the data (folded like constants)
_STATIC = {"Shape", "Constant", "ConstantOfShape", "Range", "Size"}


class ParseError(Exception):
    """What the DFC parser would reject, with the failure family and its wording."""

    def __init__(self, family: str, exception_type: str, message: str, node: str | None = None):
        super().__init__(message)
        self.family, self.exception_type, self.node = family, exception_type, node


@dataclass
class Layer:
    name: str  # <net>/<kind><n>
    kind: str  # conv, dw, deconv, ew_mult, reduce_mean, input_layer, ...
    family: str  # one of FAMILIES
    onnx_nodes: list[str]
    inputs: list[str]  # producer layer names
    in_shapes: list[tuple[int, int, int]]  # data inputs, NHWC without batch: (H, W, C)
    out_shapes: list[tuple[int, int, int]]
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    weights: int = 0  # parameters (bytes at 8 bit)
    activation: str | None = None  # fused activation
    const_operand: bool = False  # elementwise with a constant (per-channel or scalar) operand

    @property
    def short_name(self) -> str:
        return self.name.rsplit("/", 1)[-1]


@dataclass
class Graph:
    net_name: str
    layers: list[Layer]
    onnx_nodes: int  # nodes in the ONNX file, folded ones included

    def families(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for layer in self.layers:
            counts[layer.family] = counts.get(layer.family, 0) + 1
        return counts


def read_onnx(path: str | Path, net_name: str) -> Graph:
    import onnx

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # a file the parser cannot even load
        raise ParseError("parse_unsupported_op", "ParsingWithRecommendationException",
                         f"Parsing failed: the ONNX file does not load ({exc})") from None
    return read_model(model, net_name)


def _dims(vi) -> list[int] | None:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    dims = [d.dim_value if d.HasField("dim_value") else 0 for d in t.shape.dim]
    return dims if all(d > 0 for d in dims) else None


def _shapes(model) -> dict[str, list[int]]:
    g = model.graph
    infos = list(g.input) + list(g.output) + list(g.value_info)
    shapes = {vi.name: d for vi in infos if (d := _dims(vi)) is not None}
    produced = {o for n in g.node for o in n.output if o}
    if not produced <= shapes.keys():  # the exporter did not store them: infer once
        import onnx

        model = onnx.shape_inference.infer_shapes(model)
        g = model.graph
        infos = list(g.input) + list(g.output) + list(g.value_info)
        shapes.update({vi.name: d for vi in infos if (d := _dims(vi)) is not None})
    return shapes


def nhwc(dims: list[int]) -> tuple[int, int, int]:
    """An NCHW (or lower-rank) ONNX shape as the parser's NHWC row layout (H, W, C)."""
    if len(dims) == 4:
        return dims[2], dims[3], dims[1]
    if len(dims) == 3:
        return 1, dims[2], dims[1]
    if len(dims) == 2:
        return 1, 1, dims[1]
    n = 1
    for d in dims:
        n *= d
    return 1, 1, n


def _attrs(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _size(dims) -> int:
    n = 1
    for d in dims:
        n *= d
    return n


def read_model(model, net_name: str) -> Graph:
    """The parsed view of an in-memory ONNX model (see the module docstring)."""
    g = model.graph
    shapes = _shapes(model)
    const = {init.name: list(init.dims) for init in g.initializer}
    graph_outputs = {o.name for o in g.output}
    consumers: dict[str, int] = {}
    for node in g.node:
        for i in node.input:
            if i:
                consumers[i] = consumers.get(i, 0) + 1

    counters: dict[str, int] = {}
    layers: list[Layer] = []
    by_name: dict[str, Layer] = {}
    producer: dict[str, str] = {}  # data tensor -> layer name

    def add(kind, family, nodes, inputs, in_shapes, out_tensors, **kw) -> Layer:
        counters[kind] = counters.get(kind, 0) + 1
        layer = Layer(f"{net_name}/{kind}{counters[kind]}", kind, family, nodes, inputs,
                      in_shapes, [nhwc(shapes[t]) for t in out_tensors], **kw)
        layers.append(layer)
        by_name[layer.name] = layer
        for t in out_tensors:
            producer[t] = layer.name
        return layer

    for inp in g.input:
        if inp.name in const:
            continue
        dims = shapes.get(inp.name)
        if dims is None:
            raise ParseError("parse_unsupported_op", "ParsingWithRecommendationException",
                             f"Parsing failed: input {inp.name} has no static shape")
        add("input_layer", "input", [], [], [], [inp.name])

    for node in g.node:
        data_in = [i for i in node.input if i and i not in const]
        outs = [o for o in node.output if o]
        if node.op_type in _STATIC or not data_in:
            for o in outs:  # folded: a constant as far as the parser is concerned
                const[o] = shapes.get(o, [1])
            continue
        missing = [t for t in data_in + outs if t not in shapes]
        if missing:
            raise ParseError("parse_unsupported_op", "ParsingWithRecommendationException",
                             f"Parsing failed: {node.op_type} {node.name} has tensors without a "
                             f"static shape ({', '.join(missing)})", node.name)
        ins = [producer[t] for t in data_in if t in producer]
        in_shapes = [nhwc(shapes[t]) for t in data_in]
        op = node.op_type
        const_in = [i for i in node.input if i and i in const]
        weights = sum(_size(const[i]) for i in const_in)
        if op in ("Conv", "ConvTranspose"):
            layers_kw = _conv_params(node, shapes, data_in[0])
            cin = shapes[data_in[0]][1]
            groups = layers_kw["groups"]
            if op == "ConvTranspose":
                if groups > 1:
                    raise ParseError(
                        "unsupported_kernel", "UnsupportedModelError",
                        f"Super deconv is not supported with groups (estimate: {node.name} has "
                        f"group={groups}; the DFC rejects grouped transposed convolution)",
                        node.name)
                kind, family = "deconv", "deconv"
            elif groups > 1 and groups == cin:
                kind, family = "dw", "dw"
            else:
                kind, family = "conv", "conv"
            add(kind, family, [node.name], ins, in_shapes, outs, weights=weights, **layers_kw)
        elif op in ("Gemm", "MatMul"):
            add("dense", "conv", [node.name], ins, in_shapes, outs, weights=weights)
        elif op in _ACTIVATIONS:
            src = producer.get(data_in[0])
            prev = by_name.get(src) if src else None
            if (prev is not None and prev.family in CONV_FAMILIES and prev.activation is None
                    and consumers.get(data_in[0], 0) == 1 and data_in[0] not in graph_outputs):
                prev.activation = _ACTIVATIONS[op]  # the DFC fuses it into the conv
                prev.onnx_nodes.append(node.name)
                prev.weights += weights
                for o in outs:
                    producer[o] = prev.name
            else:
                add("activation", "activation", [node.name], ins, in_shapes, outs,
                    weights=weights, activation=_ACTIVATIONS[op])
        elif op in _ELEMENTWISE:
            add(_ELEMENTWISE[op], "elementwise", [node.name], ins, in_shapes, outs,
                weights=weights, const_operand=bool(const_in))
        elif op in _NORM:
            add(_NORM[op], "norm", [node.name], ins, in_shapes, outs, weights=weights)
        elif op in _SHAPE:
            add(_SHAPE[op], "shape", [node.name], ins, in_shapes, outs)
        else:
            raise ParseError(
                "parse_unsupported_op", "ParsingWithRecommendationException",
                f"Parsing failed. The errors found in the graph are: UnsupportedOperationError "
                f"in op {node.name}: {op} operation is unsupported (estimate: {op} is not in the "
                "estimate's list of parser-supported ops)", node.name)

    for out in g.output:
        src = producer.get(out.name)
        if src is None:
            raise ParseError("parse_unsupported_op", "ParsingWithRecommendationException",
                             f"Parsing failed: output {out.name} is constant or unconnected")
        layer = add("output_layer", "output", [], [src], [nhwc(shapes[out.name])], [])
        layer.out_shapes = [nhwc(shapes[out.name])]
    return Graph(net_name, layers, len(g.node))


def _conv_params(node, shapes, data_input: str) -> dict:
    a = _attrs(node)
    kernel = list(a.get("kernel_shape", []))
    if len(shapes[data_input]) != 4 or len(kernel) != 2:
        raise ParseError(
            "parse_unsupported_op", "UnsupportedModelError",
            f"1D form is not supported in layer {node.name} (estimate: the parser wants Conv2d "
            f"with kernel (1, K) on NCHW [B, C, 1, T]; this {node.op_type} has kernel {kernel} "
            f"on a rank-{len(shapes[data_input])} input)", node.name)
    return {"kernel": tuple(kernel), "stride": tuple(a.get("strides", [1, 1])),
            "dilation": tuple(a.get("dilations", [1, 1])), "groups": int(a.get("group", 1))}
