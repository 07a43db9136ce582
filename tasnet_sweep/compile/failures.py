"""The failure taxonomy: every compile failure sorted into one family, with its first failing layer.

A failure is classified from the exception's class name and its text (the message plus, where the
backend has it, the tail of the compiler log).  The rules are the Dataflow Compiler's own wording
as public compile logs and tracebacks show it (hailo_model_zoo issues #113 and #136, user
reports; the texts are listed in tests/test_failures.py); the first rule that matches wins, so
specific texts come before the generic fallbacks by class name.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path

from ..atomic import write_json, write_text
from .base import FAILURE_FAMILIES, Failure

# (family, pattern on the text) -- checked in this order, before the class-name fallbacks
_TEXT_RULE_SOURCES = (
    ("missing_sdk", r"No module named '?hailo_sdk_client"),
    ("script_error", r"Parsing failed at:\s*>!<"),
    ("calibration_shape", r"Data shape .* doesn't match network's input shape"),
    ("quantization", r"Quantization failed in layer|Desired shift is .* data bits"),
    ("quantization", r"requires quantized weights|Did you forget to quantize"),
    ("unsupported_kernel", r"Super deconv is not supported with groups"),
    ("allocator_timeout", r"Mapping Failed \(Timeout"),
    ("memory_capacity", r"Memory units capacity exceeded"),
    ("reshape_failed", r"Reshape is needed for layers?:.*adding a reshape has failed"),
    ("allocator_infeasible", r"Agent infeasible|No successful assignments"
                             r"|could not find a valid partition to contexts"),
    ("parse_unsupported_op", r"Parsing failed\. The errors found in the graph"
                             r"|1D form is not supported|Unsupported dimensions"
                             r"|UnsupportedConv3DError"),
)
_TEXT_RULES = tuple((fam, re.compile(pat, re.I | re.S)) for fam, pat in _TEXT_RULE_SOURCES)

# exception class name -> family, when no text rule matched
_TYPE_RULES = {
    "ParsingWithRecommendationException": "parse_unsupported_op",
    "UnsupportedModelError": "parse_unsupported_op",
    "UnsupportedConv3DError": "parse_unsupported_op",
    "BadInputsShape": "calibration_shape",
    "NegativeSlopeExponentNonFixable": "quantization",
    "BackendScriptParserException": "script_error",
    # the allocator refused without a text we know: it could not place the net
    "BackendAllocatorException": "allocator_infeasible",
    "ModuleNotFoundError": "missing_sdk",  # only when the text names a hailo module (below)
    "ImportError": "missing_sdk",
    "TimeoutExpired": "timeout",
    "MemoryError": "crash",  # the host ran out of memory, not the NPU
}

# where the DFC names the layer it failed on; the first match in the text wins
_LAYER_PATTERNS = tuple(re.compile(p) for p in (
    r"No successful assignments:\s*(?P<layer>[A-Za-z_][\w/.-]*)\s+errors",
    r"Reshape is needed for layers?:\s*(?P<layer>[A-Za-z_][\w/.-]*)",
    r"for layer\s+(?P<layer>[A-Za-z_][\w/.-]*)",
    r"in layer\s+(?P<layer>[A-Za-z_][\w/.-]*)",
    r"\bin (?:op|node)\s+(?P<layer>[A-Za-z_/][\w/.-]*)",
))

# Layer-name stems -> layer family.  DFC names are ``<net>/<stem><k>``: public HN files and
# logs show input_layer, conv, dw, deconv and output_layer; the other DFC stems are names seen
# in public HN files and may be incomplete.  Errors that name an ONNX node
# (``/masker/blocks.0/Conv``) end in the ONNX op type, so those are here too (lower case).
_STEMS = {
    "input_layer": "input", "const_input": "input", "output_layer": "output",
    "conv": "conv", "dw": "dw", "deconv": "deconv", "convtranspose": "deconv",
    "normalization": "norm", "layer_normalization": "norm", "batch_norm": "norm",
    "activation": "activation", "relu": "activation", "prelu": "activation",
    "sigmoid": "activation", "elementwise": "elementwise", "add": "elementwise",
    "sub": "elementwise", "mul": "elementwise", "div": "elementwise", "pow": "elementwise",
    "sqrt": "elementwise", "reducemean": "reduce", "reducesum": "reduce", "resize": "resize",
    "avgpool": "pool", "maxpool": "pool", "fc": "dense", "matmul": "dense", "concat": "shape",
    "slice": "shape", "split": "shape", "feature_splitter": "shape", "shortcut": "shape",
    "reshape": "shape", "transpose": "shape", "squeeze": "shape", "unsqueeze": "shape",
    "format_conversion": "shape",
}
_STEM_PREFIXES = (("ew_", "elementwise"), ("reduce_", "reduce"))

_HINTS = {
    "parse_unsupported_op": "the parser rejected an op or shape: check the unit exports Conv2d "
                            "(1, K) on NCHW [1, C, 1, W] and try the end node names it suggests",
    "quantization": "quantization failed: try another norm (affine/identity), more or real "
                    "calibration data, or a different optimization_level",
    "calibration_shape": "calibration data does not match the unit's input: see "
                         "compiler.calibration (input_length_policy=pad|crop)",
    "allocator_infeasible": "the allocator could not place the net: a smaller width "
                            "(unit.width / tiling), fewer channels or multi-context may fit",
    "allocator_timeout": "the allocator ran out of time: raise compiler.allocator_timeout or "
                         "shrink the unit",
    "memory_capacity": "the net needs more memory units than the device has: tile in time or "
                       "channels",
    "reshape_failed": "the compiler needed a reshape it could not add: change the named layers' "
                      "width or channels",
    "unsupported_kernel": "this kernel form is not supported (e.g. grouped transposed conv): "
                          "use model.decoder=conv1x1_head",
    "crash": "the compiler process died: see the log; SIGKILL often means the host ran out of "
             "memory",
    "timeout": "compiler.timeout_s was exceeded: raise it or shrink the unit",
    "missing_sdk": "install Hailo's Dataflow Compiler wheel (docs/backends.md: Adding Hailo's "
                   "wheels) or use compiler=estimate",
    "script_error": "the model script was rejected: check the compiler.* script settings",
    "unknown": "not a known failure text: read the log",
}


def family_of(exception_type: str, text: str) -> str:
    """The failure family for an exception class name and its text."""
    for family, pattern in _TEXT_RULES:
        if pattern.search(text):
            return family
    family = _TYPE_RULES.get(exception_type.rsplit(".", 1)[-1], "unknown")
    if family == "missing_sdk" and "hailo" not in text.lower():
        return "unknown"  # some other module is missing: an environment bug, not the SDK
    return family


def first_failing_layer(text: str) -> str | None:
    """The first layer the compiler names as failing, as it names it (``dw66``, ``net/conv3``)."""
    for pattern in _LAYER_PATTERNS:
        m = pattern.search(text)
        if m:
            return m.group("layer").rstrip(".,:;")
    return None


def layer_family(layer: str | None) -> str | None:
    """conv, dw, deconv, norm, activation, elementwise, input, output, ... for a layer name."""
    if not layer:
        return None
    base = layer.rstrip("/").rsplit("/", 1)[-1]
    stem = re.sub(r"_?\d+$", "", base).lower()
    if stem in _STEMS:
        return _STEMS[stem]
    for prefix, family in _STEM_PREFIXES:
        if stem.startswith(prefix):
            return family
    return "other"


def classify(exception_type: str, message: str, stage: str) -> Failure:
    """A ``Failure`` for an exception (class name, text) raised during ``stage``."""
    exception_type = (exception_type or "").strip()
    message = message or ""
    family = family_of(exception_type, message)
    assert family in FAILURE_FAMILIES, family
    layer = first_failing_layer(message)
    return Failure(family=family, stage=stage, exception_type=exception_type, message=message,
                   layer=layer, layer_family=layer_family(layer))


def hint(family: str) -> str:
    return _HINTS.get(family, _HINTS["unknown"])


def describe(failure: Failure, evidence: str | None = None) -> str:
    """The human-readable ``compile_failure.txt``."""
    layer = failure.layer or "-"
    if failure.layer and failure.layer_family:
        layer = f"{failure.layer} ({failure.layer_family})"
    lines = [
        f"compile failed at stage: {failure.stage}",
        f"family: {failure.family}",
        f"exception: {failure.exception_type or '-'}",
        f"first failing layer: {layer}",
    ]
    if evidence:
        lines.append(f"evidence: {evidence}")
    lines += [f"hint: {hint(failure.family)}", "", "message:"]
    lines += [f"  {ln}" for ln in (failure.message.rstrip().splitlines() or ["-"])]
    return "\n".join(lines) + "\n"


def write_failure_files(failure: Failure, run_dir, evidence: str | None = None
                        ) -> tuple[Path, Path]:
    """Write ``compile_failure.txt`` and ``compile_failure.json`` into ``run_dir`` atomically."""
    run_dir = Path(run_dir)
    record = {**asdict(failure), "head": failure.head, "hint": hint(failure.family)}
    if evidence:
        record["evidence"] = evidence
    txt = write_text(run_dir / "compile_failure.txt", describe(failure, evidence))
    js = write_json(run_dir / "compile_failure.json", record)
    return txt, js
