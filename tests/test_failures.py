"""The failure taxonomy on every real DFC error text the public sources show."""

import json

import pytest

from tasnet_sweep.compile.base import FAILURE_FAMILIES, Failure
from tasnet_sweep.compile.failures import (
    classify,
    first_failing_layer,
    layer_family,
    write_failure_files,
)

#: every text of the DFC error table in the project's notes on public Hailo sources (public
#: compile logs, tracebacks in hailo_model_zoo issues and user reports), copied verbatim
DFC_ERROR_TABLE = [
    "Parsing failed. The errors found in the graph are: ... Please try to parse the model again, "
    "using these end node names: ...",
    "1D form is not supported in layer ...",
    "Data shape (5, 1) for layer net/input_layer1 doesn't match network's input shape (1, 5, 1)",
    "Quantization failed in layer ... Desired shift is 10.0, but op has only 8 data bits",
    "No successful assignments: dw66 errors: Agent infeasible",
    "Compiler could not find a valid partition to contexts",
    "Mapping Failed (Timeout, allocation time: 31m 42s)",
    "Memory units capacity exceeded (available: 128, required: 138)",
    "Reshape is needed for layers: conv2, conv3, but adding a reshape has failed.",
    "Model requires quantized weights in order to run on HW, but none were given. Did you forget "
    "to quantize?",
    "Parsing failed at: >!<...",
]
# (exception, text as the README quotes it, stage, family, first failing layer, layer family)
README_CASES = [
    ("ParsingWithRecommendationException",
     "Parsing failed. The errors found in the graph are: ... Please try to parse the model "
     "again, using these end node names: ...", "translate", "parse_unsupported_op", None, None),
    ("UnsupportedModelError", "1D form is not supported in layer ...", "translate",
     "parse_unsupported_op", None, None),
    ("BadInputsShape", "Data shape (5, 1) for layer net/input_layer1 doesn't match network's "
     "input shape (1, 5, 1)", "optimize", "calibration_shape", "net/input_layer1", "input"),
    ("NegativeSlopeExponentNonFixable", "Quantization failed in layer ... Desired shift is 10.0, "
     "but op has only 8 data bits", "optimize", "quantization", None, None),
    ("BackendAllocatorException", "No successful assignments: dw66 errors: Agent infeasible",
     "compile", "allocator_infeasible", "dw66", "dw"),
    ("BackendAllocatorException", "Compiler could not find a valid partition to contexts",
     "compile", "allocator_infeasible", None, None),
    ("BackendAllocatorException", "Mapping Failed (Timeout, allocation time: 31m 42s)",
     "compile", "allocator_timeout", None, None),
    ("BackendAllocatorException", "Memory units capacity exceeded (available: 128, required: "
     "138)", "compile", "memory_capacity", None, None),
    ("BackendAllocatorException", "Reshape is needed for layers: conv2, conv3, but adding a "
     "reshape has failed.", "compile", "reshape_failed", "conv2", "conv"),
    ("BackendRuntimeException", "Model requires quantized weights in order to run on HW, but "
     "none were given. Did you forget to quantize?", "compile", "quantization", None, None),
    ("BackendScriptParserException", "Parsing failed at: >!<...", "optimize", "script_error",
     None, None),
    # the README's prose: raw Conv1d graphs and grouped transposed convs
    ("", "Unsupported dimensions", "translate", "parse_unsupported_op", None, None),
    ("UnsupportedConv3DError", "UnsupportedConv3DError", "translate", "parse_unsupported_op",
     None, None),
    ("", "Super deconv is not supported with groups", "translate", "unsupported_kernel",
     None, None),
    # the public outcomes table's heads
    ("BackendAllocatorException", "Agent infeasible", "compile", "allocator_infeasible",
     None, None),
    ("BackendAllocatorException", "", "compile", "allocator_infeasible", None, None),
]


@pytest.mark.parametrize("exc,text,stage,family,layer,layer_fam", README_CASES)
def test_every_readme_error_text_gets_its_family_and_layer(exc, text, stage, family, layer,
                                                           layer_fam):
    f = classify(exc, text, stage)
    assert (f.family, f.layer, f.layer_family) == (family, layer, layer_fam)
    assert f.stage == stage and f.exception_type == exc and f.message == text


def test_the_case_table_covers_every_text_in_the_dfc_error_table():
    """Guards 'every': each text of the DFC error table is a case above."""
    covered = {text for _, text, *_ in README_CASES}
    assert [t for t in DFC_ERROR_TABLE if t not in covered] == []


def test_layer_names_with_the_net_prefix_and_real_layer_names():
    cases = {
        "No successful assignments: tasnet/conv12 errors: Agent infeasible": "tasnet/conv12",
        "Quantization failed in layer tasnet/normalization3. Desired shift is 10.0": \
            "tasnet/normalization3",
        "1D form is not supported in layer tasnet/conv1": "tasnet/conv1",
        "Reshape is needed for layer: tasnet/deconv1, but adding a reshape has failed.": \
            "tasnet/deconv1",
        "UnsupportedShuffleLayerError in op /masker/Reshape: Failed to determine type": \
            "/masker/Reshape",
        "Memory units capacity exceeded (available: 128, required: 138)": None,
    }
    assert {t: first_failing_layer(t) for t in cases} == cases


@pytest.mark.parametrize("name,family", [
    ("net/conv1", "conv"), ("dw66", "dw"), ("net/deconv2", "deconv"),
    ("net/input_layer1", "input"), ("net/output_layer2", "output"),
    ("net/normalization4", "norm"), ("net/ew_add3", "elementwise"), ("net/ew_mult1", "elementwise"),
    ("net/activation2", "activation"), ("net/reduce_mean1", "reduce"), ("/masker/Conv", "conv"),
    ("/decoder/ConvTranspose", "deconv"), ("/Mul_3", "elementwise"), ("Sigmoid_2", "activation"),
    ("net/mystery7", "other"), (None, None),
])
def test_layer_family_from_the_dfc_naming_convention(name, family):
    assert layer_family(name) == family


@pytest.mark.parametrize("exc,text,family", [
    ("ModuleNotFoundError", "No module named 'hailo_sdk_client'", "missing_sdk"),
    ("ModuleNotFoundError", "No module named 'scipy'", "unknown"),
    ("TimeoutExpired", "Command timed out after 2 seconds", "timeout"),
    ("MemoryError", "", "crash"),
    ("TypeError", "optimize() got an unexpected keyword argument 'batch_size'", "unknown"),
    # the text wins over the class: an allocator timeout is not an infeasible placement
    ("BackendAllocatorException", "Mapping Failed (Timeout, allocation time: 31m 42s)\n"
     "No successful assignments: conv3 errors: Agent infeasible", "allocator_timeout"),
])
def test_class_name_fallbacks_and_precedence(exc, text, family):
    assert classify(exc, text, "compile").family == family


def test_every_family_returned_is_a_declared_family():
    texts = [c[1] for c in README_CASES] + ["", "something new"]
    for exc in ["", "BackendAllocatorException", "BadInputsShape", "KeyError"]:
        for t in texts:
            assert classify(exc, t, "compile").family in FAILURE_FAMILIES


def test_failure_files_are_written_readable_and_complete(tmp_path):
    f = classify("BackendAllocatorException",
                 "No successful assignments: dw66 errors: Agent infeasible\nmore detail",
                 "compile")
    txt, js = write_failure_files(f, tmp_path, evidence="real")
    text = txt.read_text()
    assert "family: allocator_infeasible" in text
    assert "first failing layer: dw66 (dw)" in text
    assert "stage: compile" in text and "evidence: real" in text
    assert "  more detail" in text
    record = json.loads(js.read_text())
    assert record["head"] == "No successful assignments: dw66 errors: Agent infeasible"
    assert record["evidence"] == "real" and record["hint"]
    back = Failure(**{k: v for k, v in record.items() if k not in ("head", "hint", "evidence")})
    assert back == f
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compile_failure.json",
                                                          "compile_failure.txt"]
