import onnx
import pytest
import torch
from helpers import SMALL, compose_cfg
from torch import nn

from tasnet_sweep.export import export_unit, onnx_parity
from tasnet_sweep.model.units import UNIT_NAMES, build_unit

#: the units whose graph the decoder choice changes; the fast tier exports the others once
DECODER_UNITS = {"full", "decoder", "decoder_pre", "decoder_head"}


@pytest.mark.parametrize("name,decoder", [
    pytest.param(name, decoder, marks=() if decoder == "convtranspose" or name in DECODER_UNITS
                 else pytest.mark.slow)
    for name in UNIT_NAMES for decoder in ("convtranspose", "conv1x1_head")])
def test_every_unit_exports_passes_the_checker_and_matches_torch(tmp_path, name, decoder):
    cfg = compose_cfg(*SMALL, f"unit={name}", f"model.decoder={decoder}")
    unit = build_unit(cfg.model, cfg.unit)
    res = export_unit(unit, tmp_path / f"{name}.onnx", opset=cfg.export.opset)
    model = onnx.load(res.onnx_path)
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 13
    # static shapes everywhere: every input dimension is a fixed number
    for inp, (_, shape) in zip(model.graph.input, unit.inputs):
        assert [d.dim_value for d in inp.type.tensor_type.shape.dim] == shape
    err, _ = onnx_parity(res, [n for n, _ in unit.inputs])
    assert err < 1e-4
    # the graph's MACs match counting the torch convolutions, less any dead conv the exporter
    # pruned (with the skip sum, the last block's residual conv feeds nothing)
    dead = 0
    if name in ("full", "masker_only", "tdconvnet"):
        last = [m for m in unit.module.modules() if hasattr(m, "res_conv")][-1]
        dead = last.res_conv.in_channels * last.res_conv.out_channels * unit.latent_width
    assert res.macs == count_macs(unit) - dead
    with_torch = unit.module(*unit.example_inputs())
    first = with_torch[0] if isinstance(with_torch, tuple) else with_torch
    assert res.output_shapes[0] == list(first.shape)


def test_units_have_the_shapes_the_bring_up_used():
    base = ["model.n_filters=256", "model.bn=128", "model.hidden=256", "model.time_len=16000"]
    enc = build_unit(*_mu(*base, "unit=encoder"))
    assert enc.inputs[0][1] == [1, 1, 1, 16000]
    norm = build_unit(*_mu(*base, "unit=norm", "unit.op=affine", "unit.width=1024"))
    assert norm.inputs[0][1] == [1, 128, 1, 1024]
    head = build_unit(*_mu(*base, "unit=decoder_pre"))
    assert [s for _, s in head.inputs] == [[1, 256, 1, 1999], [1, 512, 1, 1999]]


def test_tdconvnet_keeps_the_requested_number_of_blocks():
    unit = build_unit(*_mu(*SMALL, "unit=tdconvnet", "unit.blocks=2"))
    assert unit.extra["blocks"] == 2
    assert len(unit.module.masker.blocks) == 2


def test_macs_of_a_pointwise_conv_are_cin_cout_width(tmp_path):
    unit = build_unit(*_mu(*SMALL, "unit=masker_mask_head"))
    # skip=16 -> n_src*N = 64 channels over 99 frames
    assert export_unit(unit, tmp_path / "head.onnx").macs == 16 * 64 * 99


@pytest.mark.slow
def test_paper_model_onnx_matches_torch_at_16000_samples(tmp_path):
    cfg = compose_cfg()
    unit = build_unit(cfg.model, cfg.unit)
    res = export_unit(unit, tmp_path / "full.onnx")
    err, _ = onnx_parity(res, ["input"])
    assert err < 1e-4


def _mu(*overrides):
    cfg = compose_cfg(*overrides)
    return cfg.model, cfg.unit


def count_macs(unit) -> int:
    """The oracle for the graph count: MACs of the torch convolutions in one forward."""
    total = 0

    def conv_hook(mod, inp, out):
        nonlocal total
        kh, kw = mod.kernel_size
        if isinstance(mod, nn.ConvTranspose2d):
            total += inp[0].numel() * mod.out_channels * kh * kw // mod.groups
        else:
            total += out.numel() * (mod.in_channels // mod.groups) * kh * kw

    handles = [mod.register_forward_hook(conv_hook) for mod in unit.module.modules()
               if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        with torch.no_grad():
            unit.module(*unit.example_inputs())
    finally:
        for h in handles:
            h.remove()
    return total
