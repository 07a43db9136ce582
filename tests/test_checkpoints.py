"""Asteroid ConvTasNet checkpoints (model.serialize() dicts) and our own, loaded strictly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import compose_cfg

from tasnet_sweep.model.checkpoints import (
    CheckpointError,
    asteroid_shapes,
    build_from_checkpoint,
    save_checkpoint,
)
from tasnet_sweep.model.convtasnet import build_model

ARGS = {"n_src": 2, "n_filters": 16, "kernel_size": 8, "stride": 4, "bn_chan": 8,
        "hid_chan": 12, "skip_chan": 6, "conv_kernel_size": 3, "n_blocks": 2, "n_repeats": 2,
        "norm_type": "gLN", "mask_act": "sigmoid", "in_chan": None, "out_chan": None,
        "causal": False, "fb_name": "FreeFB", "sample_rate": 8000, "encoder_activation": None}


def asteroid_state(args, seed=0):
    """A random state_dict with asteroid 0.7's ConvTasNet names and shapes."""
    knobs = {"n_src": args["n_src"], "n_filters": args["n_filters"],
             "kernel_size": args["kernel_size"], "bn": args["bn_chan"],
             "hidden": args["hid_chan"], "skip": args["skip_chan"],
             "conv_kernel": args["conv_kernel_size"], "n_blocks": args["n_blocks"],
             "n_repeats": args["n_repeats"]}
    g = torch.Generator().manual_seed(seed)
    state = {}
    for k, shape in asteroid_shapes(knobs).items():
        t = torch.randn(*shape, generator=g) * 0.3
        if k.endswith(".gamma"):
            t = 1 + 0.1 * t
        if len(shape) == 1 and shape[0] == 1:  # PReLU slopes
            t = torch.full(shape, 0.25) + 0.05 * t
        state[k] = t
    return state


def serialized(args=ARGS, state=None):
    """What asteroid's ``BaseModel.serialize()`` returns: ``torch_version`` is
    ``torch.__version__`` itself, a ``torch.torch_version.TorchVersion``, not a str."""
    return {"model_name": "ConvTasNet", "state_dict": state or asteroid_state(args),
            "model_args": dict(args),
            "infos": {"software_versions": {"torch_version": torch.__version__,
                                            "pytorch_lightning_version": "1.9.5",
                                            "asteroid_version": "0.7.0"}}}


def asteroid_forward(sd, a, wav):
    """asteroid's ConvTasNet forward, written from its source with torch.nn.functional."""
    def gln(x, p):
        m = x.mean(dim=(1, 2), keepdim=True)
        v = ((x - m) ** 2).mean(dim=(1, 2), keepdim=True)
        return sd[p + ".gamma"][None, :, None] * (x - m) / (v + 1e-8).sqrt() \
            + sd[p + ".beta"][None, :, None]

    def prelu(x, p):
        return F.prelu(x, sd[p + ".weight"])

    enc = F.conv1d(wav, sd["encoder.filterbank._filters"], stride=a["stride"])
    if a["encoder_activation"] == "relu":
        enc = torch.relu(enc)
    x = F.conv1d(gln(enc, "masker.bottleneck.0"), sd["masker.bottleneck.1.weight"],
                 sd["masker.bottleneck.1.bias"])
    skip = 0
    for i in range(a["n_blocks"] * a["n_repeats"]):
        p, d = f"masker.TCN.{i}", 2 ** (i % a["n_blocks"])
        h = F.conv1d(x, sd[f"{p}.shared_block.0.weight"], sd[f"{p}.shared_block.0.bias"])
        h = gln(prelu(h, f"{p}.shared_block.1"), f"{p}.shared_block.2")
        h = F.conv1d(h, sd[f"{p}.shared_block.3.weight"], sd[f"{p}.shared_block.3.bias"],
                     padding=(a["conv_kernel_size"] - 1) * d // 2, dilation=d,
                     groups=a["hid_chan"])
        h = gln(prelu(h, f"{p}.shared_block.4"), f"{p}.shared_block.5")
        x = x + F.conv1d(h, sd[f"{p}.res_conv.weight"], sd[f"{p}.res_conv.bias"])
        skip = skip + F.conv1d(h, sd[f"{p}.skip_conv.weight"], sd[f"{p}.skip_conv.bias"])
    score = F.conv1d(prelu(skip, "masker.mask_net.0"), sd["masker.mask_net.1.weight"],
                     sd["masker.mask_net.1.bias"])
    masks = torch.sigmoid(score.view(1, a["n_src"], a["n_filters"], -1))
    dec = F.conv_transpose1d((masks * enc[:, None]).view(a["n_src"], a["n_filters"], -1),
                             sd["decoder.filterbank._filters"], stride=a["stride"])
    out = torch.zeros(a["n_src"], wav.shape[-1])
    out[:, :min(dec.shape[-1], wav.shape[-1])] = dec[:, 0, :wav.shape[-1]]
    return out


@pytest.mark.parametrize("enc_act,decoder", [(None, "convtranspose"), ("relu", "conv1x1_head")])
def test_asteroid_checkpoint_matches_asteroid_forward(tmp_path, enc_act, decoder):
    args = {**ARGS, "encoder_activation": enc_act}
    obj = serialized(args)
    torch.save(obj, tmp_path / "ast.pth")
    cfg = compose_cfg("model.time_len=400", f"model.decoder={decoder}")
    model, merged, ckpt = build_from_checkpoint(tmp_path / "ast.pth", cfg.model)
    assert (merged["n_filters"], merged["hidden"], merged["n_blocks"] * merged["n_repeats"]) == \
        (16, 12, 4)
    assert model.encoder.relu == (enc_act == "relu")
    wav = torch.randn(1, 1, 400, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ours = model(wav.reshape(1, 1, 1, -1))[0, :, 0]
        ref = asteroid_forward(obj["state_dict"], args, wav)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), atol=1e-5)


def test_asteroid_strict_check_lists_missing_unexpected_and_knobs(tmp_path):
    state = asteroid_state(ARGS)
    state.pop("masker.TCN.1.res_conv.bias")
    state["masker.extra.weight"] = torch.zeros(1)
    torch.save(serialized(ARGS, state), tmp_path / "bad.pth")
    cfg = compose_cfg()
    with pytest.raises(CheckpointError) as err:
        build_from_checkpoint(tmp_path / "bad.pth", cfg.model)
    msg = str(err.value)
    assert "\n" not in msg
    assert "missing keys: masker.TCN.1.res_conv.bias" in msg
    assert "unexpected keys: masker.extra.weight" in msg
    knobs = {**ARGS, "mask_act": "softmax", "causal": True, "norm_type": "BN"}
    torch.save(serialized(knobs, asteroid_state(ARGS)), tmp_path / "knobs.pth")
    with pytest.raises(CheckpointError) as err:
        build_from_checkpoint(tmp_path / "knobs.pth", cfg.model)
    for word in ("mask_act='softmax'", "causal=True", "norm_type='BN'"):
        assert word in str(err.value)


def test_pickled_objects_are_refused(tmp_path):
    from fractions import Fraction  # any object beyond tensors, containers and numbers

    torch.save({"state_dict": {}, "obj": Fraction(1, 3)}, tmp_path / "p.pth")
    with pytest.raises(CheckpointError, match="weights_only=True"):
        build_from_checkpoint(tmp_path / "p.pth", compose_cfg().model)
    with pytest.raises(CheckpointError, match="does not exist"):
        build_from_checkpoint(tmp_path / "none.pth", compose_cfg().model)


def test_own_checkpoint_round_trip_keeps_output(tmp_path):
    cfg = compose_cfg("model.n_filters=16", "model.bn=8", "model.hidden=16", "model.skip=8",
                      "model.n_blocks=2", "model.n_repeats=1", "model.time_len=300",
                      "model.norm=cLN")
    torch.manual_seed(5)
    model = build_model(cfg.model)
    save_checkpoint(tmp_path / "ours.pt", model, cfg.model, sample_rate=8000)
    other = compose_cfg("model.time_len=300", "model.decoder=conv1x1_head")  # default knobs
    loaded, merged, ckpt = build_from_checkpoint(tmp_path / "ours.pt", other.model)
    assert merged["norm"] == "cLN" and merged["n_filters"] == 16 and ckpt.sample_rate == 8000
    wav = torch.randn(1, 1, 1, 300)
    with torch.no_grad():
        np.testing.assert_allclose(loaded(wav).numpy(), model(wav).numpy(), atol=1e-5)


def test_asteroids_own_serialize_layout_loads_with_its_torch_version_object(tmp_path):
    obj = serialized(ARGS)
    assert type(obj["infos"]["software_versions"]["torch_version"]).__name__ == "TorchVersion"
    torch.save(obj, tmp_path / "recipe.pth")  # as asteroid recipes save it
    model, merged, ckpt = build_from_checkpoint(tmp_path / "recipe.pth", compose_cfg().model)
    assert ckpt.source == "asteroid" and merged["n_filters"] == 16


def _lightning(state, flat: bool):
    """A pytorch-lightning checkpoint of an asteroid System: the model under ``model.``."""
    conf = {"filterbank": {"n_filters": 16, "kernel_size": 8, "stride": 4},
            "masknet": {"n_blocks": 2, "n_repeats": 2, "bn_chan": 8, "hid_chan": 12,
                        "skip_chan": 6, "conv_kernel_size": 3, "norm_type": "gLN",
                        "mask_act": "sigmoid"},
            "data": {"n_src": 2, "sample_rate": 8000}, "optim": {"lr": 1e-3}}
    if flat:
        conf = {f"{section}/{k}": v for section, d in conf.items() for k, v in d.items()}
    return {"epoch": 7, "global_step": 700, "pytorch-lightning_version": "1.9.5",
            "state_dict": {**{f"model.{k}": v for k, v in state.items()},
                           "loss_func.weight": torch.ones(1)},
            ("hyper_parameters" if flat else "training_config"): conf}


@pytest.mark.parametrize("flat", [False, True], ids=["training_config", "flat_hparams"])
def test_a_lightning_checkpoint_of_an_asteroid_system_loads(tmp_path, flat):
    args = {**ARGS, "encoder_activation": None}
    state = asteroid_state(args)
    torch.save(_lightning(state, flat), tmp_path / "epoch=7.ckpt")
    model, merged, ckpt = build_from_checkpoint(tmp_path / "epoch=7.ckpt",
                                                compose_cfg("model.time_len=400").model)
    assert ckpt.source == "lightning" and ckpt.sample_rate == 8000
    assert (merged["n_src"], merged["hidden"], merged["n_repeats"]) == (2, 12, 2)
    wav = torch.randn(1, 1, 400, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ours = model(wav.reshape(1, 1, 1, -1))[0, :, 0]
        ref = asteroid_forward(state, args, wav)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), atol=1e-5)


def test_a_lightning_checkpoint_without_the_models_config_is_one_line(tmp_path):
    obj = _lightning(asteroid_state(ARGS), flat=False)
    obj.pop("training_config")
    torch.save(obj, tmp_path / "bare.ckpt")
    with pytest.raises(CheckpointError, match="without the model's config"):
        build_from_checkpoint(tmp_path / "bare.ckpt", compose_cfg().model)


def test_separate_needs_a_checkpoint_or_random_weights_and_names_its_digest(tmp_path):
    import hashlib

    from tasnet_sweep.commands.separate import run_separate
    from tasnet_sweep.config import ConfigError
    from tasnet_sweep.runtime.audio import write_wav

    write_wav(tmp_path / "mix.wav", np.zeros(800, np.float32), 8000)
    common = (f"runtime.input={tmp_path}/mix.wav", f"runtime.output_dir={tmp_path}/out",
              "model.time_len=400")
    with pytest.raises(ConfigError) as err:
        run_separate(compose_cfg(*common))
    assert "runtime.random_weights=true" in str(err.value) and "runtime.checkpoint" in str(
        err.value)
    torch.save(serialized(ARGS), tmp_path / "m.pth")
    metrics = run_separate(compose_cfg(*common, f"runtime.checkpoint={tmp_path}/m.pth"))
    digest = hashlib.sha256((tmp_path / "m.pth").read_bytes()).hexdigest()
    assert metrics["weights"] == {"source": "asteroid", "path": f"{tmp_path}/m.pth",
                                  "sha256": digest}
    untrained = run_separate(compose_cfg(*common, "runtime.random_weights=true"))
    assert untrained["weights"] == {"source": "random", "seed": 0}
