import pytest
import torch
from helpers import SMALL, compose_cfg

from tasnet_sweep.model.blocks import overlap_add
from tasnet_sweep.model.convtasnet import build_model, dims_for
from tasnet_sweep.model.norms import make_norm
from tasnet_sweep.model.units import count_params


def test_paper_configuration_has_the_reference_parameter_count():
    cfg = compose_cfg()  # defaults are the paper's best configuration
    model = build_model(cfg.model)
    # 5,050,545 in asteroid's ConvTasNet with the same configuration
    assert count_params(model) == 5_050_545


def test_every_one_d_op_is_a_two_d_op_on_h_equal_one():
    model = build_model(compose_cfg(*SMALL).model)
    kinds = {type(m).__name__ for m in model.modules()}
    assert not kinds & {"Conv1d", "ConvTranspose1d"}
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            assert m.kernel_size[0] == 1


def test_forward_returns_one_waveform_per_source_of_the_input_length():
    cfg = compose_cfg(*SMALL, "model.n_src=3", "model.time_len=803")
    y = build_model(cfg.model)(torch.randn(2, 1, 1, 803))
    assert y.shape == (2, 3, 1, 803)


def test_conv1x1_head_with_overlap_add_equals_transposed_decoder():
    a = build_model(compose_cfg(*SMALL).model)
    b = build_model(compose_cfg(*SMALL, "model.decoder=conv1x1_head").model)
    b.load_state_dict({k: v for k, v in a.state_dict().items() if not k.startswith("decoder")},
                      strict=False)
    w = a.decoder.deconv.weight  # [N, 1, 1, L]
    n, _, _, L = w.shape
    b.decoder.head.weight.data = w.reshape(n, L).t().reshape(L, n, 1, 1).clone()
    x = torch.randn(1, 1, 1, 800)
    with torch.no_grad():
        assert torch.allclose(a(x), b(x), atol=1e-5)


def test_overlap_add_sums_overlapping_frames():
    frames = torch.ones(1, 4, 1, 3)  # one source, L=4, three frames, stride 2
    wav = overlap_add(frames, 4, 2)
    assert wav.flatten().tolist() == [1, 1, 2, 2, 2, 2, 1, 1]


def test_truncate_keeps_the_first_k_blocks_and_project_drops_skip_convs():
    full = build_model(compose_cfg(*SMALL).model)
    cut = build_model(compose_cfg(*SMALL, "model.truncate_k_blocks=1").model)
    assert len(full.masker.blocks) == 2 and len(cut.masker.blocks) == 1
    proj = build_model(compose_cfg(*SMALL, "model.skip_topology=project").model)
    assert all(b.skip_conv is None for b in proj.masker.blocks)
    assert proj.masker.projection is not None


def test_dilations_double_within_a_repeat_and_restart():
    m = build_model(compose_cfg(*SMALL, "model.n_blocks=3", "model.n_repeats=2").model)
    assert [b.dilation for b in m.masker.blocks] == [1, 2, 4, 1, 2, 4]


def test_bypass_uses_the_masker_output_as_source_features():
    m = build_model(compose_cfg(*SMALL, "model.mask_mul=bypass").model)
    enc, masks = torch.randn(1, 32, 1, 5), torch.randn(1, 64, 1, 5)
    assert torch.equal(m.apply_masks(enc, masks), masks)
    n = build_model(compose_cfg(*SMALL).model)
    assert torch.allclose(n.apply_masks(enc, masks)[:, 32:], enc * masks[:, 32:])


@pytest.mark.parametrize("name", ["gLN", "cLN"])
def test_layer_norms_normalise_over_their_axes(name):
    x = torch.randn(1, 8, 1, 50) * 3 + 2
    y = make_norm(name, 8)(x)
    dims = (1, 2, 3) if name == "gLN" else (1,)
    assert torch.allclose(y.mean(dim=dims), torch.zeros(1), atol=1e-5)
    assert torch.allclose(y.var(dim=dims, unbiased=False), torch.ones(1), atol=1e-3)


def test_latent_width_follows_the_encoder_arithmetic():
    assert dims_for(16, 8, 16000).latent_width == 1999  # as in the public bring-up's encoder
    assert dims_for(16, 8, 16000).decoded_len == 16000
