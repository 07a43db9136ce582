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
    return _Reader(model, net_name).read()


class _Reader:
    """One pass over an ONNX graph: inputs, then each node through its op's handler (the
    table below), then outputs; layers are named ``<net>/<kind><n>`` as the DFC names them."""

    def __init__(self, model, net_name: str):
        self.g = model.graph
        self.net_name = net_name
        self.shapes = _shapes(model)
        self.const = {init.name: list(init.dims) for init in self.g.initializer}
        self.graph_outputs = {o.name for o in self.g.output}
        self.consumers: dict[str, int] = {}
        for node in self.g.node:
            for i in node.input:
                if i:
                    self.consumers[i] = self.consumers.get(i, 0) + 1
        self.counters: dict[str, int] = {}
        self.layers: list[Layer] = []
        self.by_name: dict[str, Layer] = {}
        self.producer: dict[str, str] = {}  # data tensor -> layer name

    def read(self) -> Graph:
        for inp in self.g.input:
            if inp.name in self.const:
                continue
            if self.shapes.get(inp.name) is None:
                raise ParseError("parse_unsupported_op", "ParsingWithRecommendationException",
                                 f"Parsing failed: input {inp.name} has no static shape")
            self.add("input_layer", "input", [], [], [], [inp.name])
        for node in self.g.node:
            self.node(node)
        for out in self.g.output:
            src = self.producer.get(out.name)
            if src is None:
                raise ParseError("parse_unsupported_op", "ParsingWithRecommendationException",
                                 f"Parsing failed: output {out.name} is constant or unconnected")
            layer = self.add("output_layer", "output", [], [src],
                             [nhwc(self.shapes[out.name])], [])
            layer.out_shapes = [nhwc(self.shapes[out.name])]
        return Graph(self.net_name, self.layers, len(self.g.node))

    def add(self, kind, family, nodes, inputs, in_shapes, out_tensors, **kw) -> Layer:
        self.counters[kind] = self.counters.get(kind, 0) + 1
        layer = Layer(f"{self.net_name}/{kind}{self.counters[kind]}", kind, family, nodes,
                      inputs, in_shapes, [nhwc(self.shapes[t]) for t in out_tensors], **kw)
        self.layers.append(layer)
        self.by_name[layer.name] = layer
        for t in out_tensors:
            self.producer[t] = layer.name
        return layer

    def node(self, node) -> None:
        data_in = [i for i in node.input if i and i not in self.const]
        outs = [o for o in node.output if o]
        if node.op_type in _STATIC or not data_in:
            for o in outs:  # folded: a constant as far as the parser is concerned
                self.const[o] = self.shapes.get(o, [1])
            return
        missing = [t for t in data_in + outs if t not in self.shapes]
        if missing:
            raise ParseError("parse_unsupported_op", "ParsingWithRecommendationException",
                             f"Parsing failed: {node.op_type} {node.name} has tensors without a "
                             f"static shape ({', '.join(missing)})", node.name)
        handler = _HANDLERS.get(node.op_type)
        if handler is None:
            op = node.op_type
            raise ParseError(
                "parse_unsupported_op", "ParsingWithRecommendationException",
                f"Parsing failed. The errors found in the graph are: UnsupportedOperationError "
                f"in op {node.name}: {op} operation is unsupported (estimate: {op} is not in the "
                "estimate's list of parser-supported ops)", node.name)
        const_in = [i for i in node.input if i and i in self.const]
        handler(self, _Node(node, data_in, outs, const_in,
                            [self.producer[t] for t in data_in if t in self.producer],
                            [nhwc(self.shapes[t]) for t in data_in],
                            sum(_size(self.const[i]) for i in const_in)))

    # -- one handler per op family ------------------------------------------------------
    def conv(self, n: _Node) -> None:
        params = _conv_params(n.node, self.shapes, n.data_in[0])
        cin = self.shapes[n.data_in[0]][1]
        groups = params["groups"]
        if n.node.op_type == "ConvTranspose":
            if groups > 1:
                raise ParseError(
                    "unsupported_kernel", "UnsupportedModelError",
                    f"Super deconv is not supported with groups (estimate: {n.node.name} has "
                    f"group={groups}; the DFC rejects grouped transposed convolution)",
                    n.node.name)
            kind = "deconv"
        elif groups > 1 and groups == cin:
            kind = "dw"
        else:
            kind = "conv"
        self.add(kind, kind, [n.node.name], n.ins, n.in_shapes, n.outs, weights=n.weights,
                 **params)

    def dense(self, n: _Node) -> None:
        self.add("dense", "conv", [n.node.name], n.ins, n.in_shapes, n.outs, weights=n.weights)

    def activation(self, n: _Node) -> None:
        op, source = n.node.op_type, n.data_in[0]
        src = self.producer.get(source)
        prev = self.by_name.get(src) if src else None
        if (prev is not None and prev.family in CONV_FAMILIES and prev.activation is None
                and self.consumers.get(source, 0) == 1 and source not in self.graph_outputs):
            prev.activation = _ACTIVATIONS[op]  # the DFC fuses it into the conv
            prev.onnx_nodes.append(n.node.name)
            prev.weights += n.weights
            for o in n.outs:
                self.producer[o] = prev.name
        else:
            self.add("activation", "activation", [n.node.name], n.ins, n.in_shapes, n.outs,
                     weights=n.weights, activation=_ACTIVATIONS[op])

    def elementwise(self, n: _Node) -> None:
        self.add(_ELEMENTWISE[n.node.op_type], "elementwise", [n.node.name], n.ins, n.in_shapes,
                 n.outs, weights=n.weights, const_operand=bool(n.const_in))

    def norm(self, n: _Node) -> None:
        self.add(_NORM[n.node.op_type], "norm", [n.node.name], n.ins, n.in_shapes, n.outs,
                 weights=n.weights)

    def shape(self, n: _Node) -> None:
        self.add(_SHAPE[n.node.op_type], "shape", [n.node.name], n.ins, n.in_shapes, n.outs)


@dataclass
class _Node:
    """A node as its handler sees it: data inputs (not constants), outputs, the layers that
    produce its inputs, their NHWC shapes and the size of its constant operands."""
    node: object
    data_in: list
    outs: list
    const_in: list
    ins: list
    in_shapes: list
    weights: int


_HANDLERS = {"Conv": _Reader.conv, "ConvTranspose": _Reader.conv,
             "Gemm": _Reader.dense, "MatMul": _Reader.dense,
             **dict.fromkeys(_ACTIVATIONS, _Reader.activation),
             **dict.fromkeys(_ELEMENTWISE, _Reader.elementwise),
             **dict.fromkeys(_NORM, _Reader.norm),
             **dict.fromkeys(_SHAPE, _Reader.shape)}


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
