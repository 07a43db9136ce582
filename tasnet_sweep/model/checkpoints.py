"""Checkpoints: asteroid's ConvTasNet (``model.serialize()`` dicts), a pytorch-lightning
``.ckpt`` of an asteroid training run, and our own.

All are read with ``torch.load(..., weights_only=True)``: tensors, dicts, lists, strings and
numbers only, never arbitrary pickled objects.  One class more is allowed, through
``torch.serialization.safe_globals``: ``torch.torch_version.TorchVersion``, because asteroid's
``serialize()`` stores ``infos.software_versions.torch_version = torch.__version__``, which is
that class (asteroid/models/base_models.py), and ``weights_only`` refuses it otherwise.

A lightning checkpoint of an asteroid ``System`` holds the model's weights under ``state_dict``
with a ``model.`` prefix and the training config under ``training_config`` (asteroid's
``System.on_save_checkpoint``) or ``hyper_parameters``: ``filterbank`` and ``masknet`` sections
(nested, or flattened as ``filterbank/n_filters``), ``data.sample_rate``.

asteroid 0.7 names (asteroid/masknn/convolutional.py TDConvNet + Conv1DBlock,
asteroid/filterbanks/free_fb.py FreeFB, asteroid/masknn/norms.py GlobLN/ChanLN):

    encoder.filterbank._filters            [N, 1, L]      -> encoder.conv.weight [N, 1, 1, L]
    decoder.filterbank._filters            [N, 1, L]      -> decoder.deconv.weight (or head)
    masker.bottleneck.0.{gamma,beta}       [N]            -> masker.norm.{gamma,beta}
    masker.bottleneck.1.{weight,bias}      Conv1d N->B    -> masker.bottleneck
    masker.TCN.<i>.shared_block.0          Conv1d B->H    -> masker.blocks.<i>.in_conv
                               .1          PReLU          -> .act1
                               .2          norm           -> .norm1
                               .3          depthwise      -> .dw_conv
                               .4          PReLU          -> .act2
                               .5          norm           -> .norm2
    masker.TCN.<i>.res_conv / skip_conv                   -> .res_conv / .skip_conv
    masker.mask_net.0 (PReLU), .1 (Conv1d Sc -> n_src*N)  -> masker.mask_head.act / .conv

Our checkpoints are ``{"format": "tasnet_sweep", "version": 1, "model_args": {...},
"sample_rate": int, "encoder_activation": "relu"|"linear", "state_dict": {...}}``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..atomic import write_bytes
from .convtasnet import build_model

FORMAT = "tasnet_sweep"
#: architecture knobs a checkpoint fixes; time_len, decoder and truncate_k_blocks stay the config's
ARCH_KNOBS = ("n_src", "n_filters", "kernel_size", "stride", "bn", "hidden", "skip",
              "conv_kernel", "n_blocks", "n_repeats", "norm", "activation", "mask_act",
              "skip_topology", "mask_mul")
ASTEROID_NORMS = {"gLN": "gLN", "cLN": "cLN"}
ASTEROID_MASK_ACTS = ("sigmoid", "relu")
ASTEROID_FILTERBANKS = (None, "free", "freefb")
LINEAR = (None, "linear", "identity")
_LIST_SHOWN = 8


class CheckpointError(ValueError):
    """A checkpoint that cannot be used, worded as one line."""


@dataclass
class Checkpoint:
    """A checkpoint turned into our model's terms."""

    source: str  # asteroid | lightning | tasnet_sweep
    knobs: dict  # ARCH_KNOBS values
    state_dict: dict  # asteroid names already mapped onto ours (for the config's decoder)
    sample_rate: int | None = None
    encoder_activation: str = "relu"  # relu | linear (asteroid's default is linear)
    notes: list[str] = field(default_factory=list)


def _allowed_globals():
    """``weights_only`` plus the one class asteroid's checkpoints carry (see the docstring)."""
    import contextlib

    from torch.torch_version import TorchVersion

    safe = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5
    return safe([TorchVersion]) if safe is not None else contextlib.nullcontext()


def file_sha256(path: str | Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _load_dict(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"runtime.checkpoint={str(path)!r} does not exist: expected a "
                              "checkpoint file (asteroid model.serialize() or ours)")
    try:
        with _allowed_globals():
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickles with objects, truncated files, not a torch file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"runtime.checkpoint={str(path)!r} could not be read with "
                              f"weights_only=True ({first[:200]})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("state_dict"), dict):
        raise CheckpointError(f"runtime.checkpoint={str(path)!r} has no 'state_dict' dict: "
                              "expected asteroid's model.serialize() output or our own format")
    return obj


def read_checkpoint(path: str | Path, decoder: str = "convtranspose") -> Checkpoint:
    """Read either format; ``decoder`` is the config's decoder the weights are mapped onto."""
    obj = _load_dict(Path(path))
    if obj.get("format") == FORMAT:
        args = obj.get("model_args") or {}
        missing = [k for k in ARCH_KNOBS if k not in args]
        if missing:
            raise CheckpointError(f"runtime.checkpoint={str(path)!r} lacks model_args "
                                  f"{', '.join(missing)}")
        state = dict(obj["state_dict"])
        if args.get("decoder", decoder) != decoder:
            state = _convert_decoder(state, args["decoder"], decoder)
        return Checkpoint(FORMAT, {k: args[k] for k in ARCH_KNOBS}, state,
                          obj.get("sample_rate"), obj.get("encoder_activation", "relu"))
    if _is_lightning(obj):
        ckpt = from_asteroid(lightning_to_serialized(obj, path), decoder)
        ckpt.source = "lightning"
        return ckpt
    return from_asteroid(obj, decoder)


# ---- pytorch-lightning ------------------------------------------------------------------------
LIGHTNING_PREFIX = "model."


def _is_lightning(obj: dict) -> bool:
    keys = list(obj["state_dict"])
    return "model_args" not in obj and bool(keys) and any(
        k.startswith(LIGHTNING_PREFIX) for k in keys) and (
        "training_config" in obj or "hyper_parameters" in obj
        or "pytorch-lightning_version" in obj)


def _section(config: dict, name: str) -> dict:
    """``config[name]`` nested, or the ``name/key`` (or ``name.key``) entries flattened."""
    if isinstance(config.get(name), dict):
        return dict(config[name])
    out = {}
    for key, value in config.items():
        for sep in ("/", "."):
            if isinstance(key, str) and key.startswith(name + sep):
                out[key[len(name) + 1:]] = value
    return out


def lightning_to_serialized(obj: dict, path) -> dict:
    """A lightning ``.ckpt`` of an asteroid System -> the ``serialize()`` layout."""
    config = obj.get("training_config") or obj.get("hyper_parameters") or {}
    if not isinstance(config, dict):
        config = dict(config)
    args = {**_section(config, "filterbank"), **_section(config, "masknet")}
    if not args:
        raise CheckpointError(f"runtime.checkpoint={str(path)!r} is a lightning checkpoint "
                              "without the model's config: expected training_config or "
                              "hyper_parameters with filterbank and masknet sections")
    data = _section(config, "data")
    args = {k: (None if v == "None" else v) for k, v in args.items()}  # asteroid's none_to_string
    if "sample_rate" not in args and data.get("sample_rate"):
        args["sample_rate"] = data["sample_rate"]
    if "n_src" not in args and data.get("n_src"):
        args["n_src"] = data["n_src"]
    state = {k[len(LIGHTNING_PREFIX):]: v for k, v in obj["state_dict"].items()
             if k.startswith(LIGHTNING_PREFIX)}
    return {"model_name": "ConvTasNet", "model_args": args, "state_dict": state}


# ---- asteroid -----------------------------------------------------------------------------------
def asteroid_knobs(model_args: dict) -> tuple[dict, str, int | None, list[str]]:
    """(our knobs, encoder activation, sample rate, problems) for asteroid ``model_args``."""
    a, problems = dict(model_args), []
    n = a.get("n_filters", 512)
    norm = a.get("norm_type", "gLN")
    if norm not in ASTEROID_NORMS:
        problems.append(f"norm_type={norm!r} (we represent {', '.join(ASTEROID_NORMS)})")
    mask_act = a.get("mask_act", "sigmoid")
    if mask_act not in ASTEROID_MASK_ACTS:
        problems.append(f"mask_act={mask_act!r} (we represent {', '.join(ASTEROID_MASK_ACTS)})")
    if a.get("causal", False):
        problems.append("causal=True (we represent non-causal, symmetric padding only)")
    fb = a.get("fb_name")
    if (fb.lower() if isinstance(fb, str) else fb) not in ASTEROID_FILTERBANKS:
        problems.append(f"fb_name={fb!r} (we represent the free filterbank only)")
    for key in ("in_chan", "out_chan"):
        if a.get(key) not in (None, n):
            problems.append(f"{key}={a[key]!r} differs from n_filters={n} (we represent "
                            "in_chan = out_chan = n_filters)")
    skip = a.get("skip_chan", 128)
    if not skip:
        problems.append("skip_chan=0 (we represent the summed skip connections only)")
    enc_act = a.get("encoder_activation")
    if enc_act not in LINEAR and enc_act != "relu":
        problems.append(f"encoder_activation={enc_act!r} (we represent none/linear or relu)")
    for key in ("padding", "output_padding"):
        if a.get(key, 0):
            problems.append(f"{key}={a[key]!r} (we represent 0)")
    knobs = {"n_src": a.get("n_src"), "n_filters": n, "kernel_size": a.get("kernel_size", 16),
             "stride": a.get("stride", 8), "bn": a.get("bn_chan", 128),
             "hidden": a.get("hid_chan", 512), "skip": skip,
             "conv_kernel": a.get("conv_kernel_size", 3), "n_blocks": a.get("n_blocks", 8),
             "n_repeats": a.get("n_repeats", 3), "norm": ASTEROID_NORMS.get(norm, norm),
             "activation": "prelu", "mask_act": mask_act, "skip_topology": "sum",
             "mask_mul": "normal"}
    if not isinstance(knobs["n_src"], int):
        problems.append(f"n_src={knobs['n_src']!r} (expected a whole number)")
    return knobs, ("relu" if enc_act == "relu" else "linear"), a.get("sample_rate"), problems


def asteroid_shapes(k: dict) -> dict[str, tuple]:
    """Every asteroid ConvTasNet state_dict key and its shape for knobs ``k``."""
    n, length, b, h, sc, p = (k["n_filters"], k["kernel_size"], k["bn"], k["hidden"], k["skip"],
                              k["conv_kernel"])
    shapes = {"encoder.filterbank._filters": (n, 1, length),
              "decoder.filterbank._filters": (n, 1, length),
              "masker.bottleneck.0.gamma": (n,), "masker.bottleneck.0.beta": (n,),
              "masker.bottleneck.1.weight": (b, n, 1), "masker.bottleneck.1.bias": (b,)}
    for i in range(k["n_blocks"] * k["n_repeats"]):
        t = f"masker.TCN.{i}"
        shapes.update({
            f"{t}.shared_block.0.weight": (h, b, 1), f"{t}.shared_block.0.bias": (h,),
            f"{t}.shared_block.1.weight": (1,),
            f"{t}.shared_block.2.gamma": (h,), f"{t}.shared_block.2.beta": (h,),
            f"{t}.shared_block.3.weight": (h, 1, p), f"{t}.shared_block.3.bias": (h,),
            f"{t}.shared_block.4.weight": (1,),
            f"{t}.shared_block.5.gamma": (h,), f"{t}.shared_block.5.beta": (h,),
            f"{t}.res_conv.weight": (b, h, 1), f"{t}.res_conv.bias": (b,),
            f"{t}.skip_conv.weight": (sc, h, 1), f"{t}.skip_conv.bias": (sc,)})
    shapes.update({"masker.mask_net.0.weight": (1,),
                   "masker.mask_net.1.weight": (k["n_src"] * n, sc, 1),
                   "masker.mask_net.1.bias": (k["n_src"] * n,)})
    return shapes


_BLOCK_PARTS = {"shared_block.0": "in_conv", "shared_block.1": "act1", "shared_block.2": "norm1",
                "shared_block.3": "dw_conv", "shared_block.4": "act2", "shared_block.5": "norm2",
                "res_conv": "res_conv", "skip_conv": "skip_conv"}


def _our_name(key: str) -> str:
    if key.startswith("masker.TCN."):
        _, _, i, rest = key.split(".", 3)
        part, leaf = rest.rsplit(".", 1)
        return f"masker.blocks.{i}.{_BLOCK_PARTS[part]}.{leaf}"
    return {"encoder.filterbank._filters": "encoder.conv.weight",
            "decoder.filterbank._filters": "decoder.deconv.weight",
            "masker.bottleneck.0.gamma": "masker.norm.gamma",
            "masker.bottleneck.0.beta": "masker.norm.beta",
            "masker.bottleneck.1.weight": "masker.bottleneck.weight",
            "masker.bottleneck.1.bias": "masker.bottleneck.bias",
            "masker.mask_net.0.weight": "masker.mask_head.act.weight",
            "masker.mask_net.1.weight": "masker.mask_head.conv.weight",
            "masker.mask_net.1.bias": "masker.mask_head.conv.bias"}[key]


def _our_layout(name: str, value: torch.Tensor) -> torch.Tensor:
    """Conv1d [O, I, K] -> Conv2d [O, I, 1, K]; norm [C] -> [1, C, 1, 1]; PReLU stays."""
    if value.dim() == 3:
        return value.unsqueeze(2)
    if name.endswith((".gamma", ".beta")):
        return value.reshape(1, -1, 1, 1)
    return value


def _listed(names) -> str:
    names = sorted(names)
    shown = ", ".join(names[:_LIST_SHOWN])
    return shown + (f" (+{len(names) - _LIST_SHOWN} more)" if len(names) > _LIST_SHOWN else "")


def from_asteroid(obj: dict, decoder: str = "convtranspose") -> Checkpoint:
    """An asteroid ``serialize()`` dict -> our names, strictly checked (keys, shapes, knobs)."""
    name = obj.get("model_name", "ConvTasNet")
    if name != "ConvTasNet":
        raise CheckpointError(f"checkpoint model_name={name!r}: expected asteroid's ConvTasNet")
    args = obj.get("model_args")
    if not isinstance(args, dict):
        raise CheckpointError("asteroid checkpoint has no 'model_args' dict (asteroid's "
                              "model.serialize() writes one)")
    knobs, enc_act, rate, problems = asteroid_knobs(args)
    if problems:
        raise CheckpointError("asteroid checkpoint uses what our model cannot represent: "
                              + "; ".join(problems))
    state = obj["state_dict"]
    want = asteroid_shapes(knobs)
    missing = set(want) - set(state)
    unexpected = set(state) - set(want)
    wrong = [f"{k} {tuple(state[k].shape)} != {want[k]}" for k in sorted(set(want) & set(state))
             if tuple(state[k].shape) != want[k]]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing keys: {_listed(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_listed(unexpected)}")
        if wrong:
            parts.append(f"wrong shapes: {'; '.join(wrong[:_LIST_SHOWN])}")
        raise CheckpointError("asteroid state_dict does not match its model_args: "
                              + " | ".join(parts))
    ours = {_our_name(k): _our_layout(k, v.detach().float()) for k, v in state.items()}
    if decoder != "convtranspose":
        ours = _convert_decoder(ours, "convtranspose", decoder)
    notes = [] if enc_act == "relu" else [
        "encoder_activation=linear (asteroid's default): no ReLU after the encoder"]
    return Checkpoint("asteroid", knobs, ours, rate, enc_act, notes)


def _convert_decoder(state: dict, have: str, want: str) -> dict:
    """The same synthesis filterbank as a transposed conv [N,1,1,L] or a 1x1 head [L,N,1,1]."""
    state = dict(state)
    if have == "convtranspose" and want == "conv1x1_head":
        w = state.pop("decoder.deconv.weight")
        state["decoder.head.weight"] = w[:, 0, 0, :].t().reshape(w.shape[-1], w.shape[0], 1, 1)
    elif have == "conv1x1_head" and want == "convtranspose":
        w = state.pop("decoder.head.weight")
        state["decoder.deconv.weight"] = w[:, :, 0, 0].t().reshape(w.shape[1], 1, 1, w.shape[0])
    return state


# ---- our model ----------------------------------------------------------------------------------
def load_into(model, ckpt: Checkpoint) -> None:
    """Load strictly; a mismatch lists the missing and unexpected names in one line."""
    ours = model.state_dict()
    missing = set(ours) - set(ckpt.state_dict)
    unexpected = set(ckpt.state_dict) - set(ours)
    wrong = [f"{k} {tuple(ckpt.state_dict[k].shape)} != {tuple(ours[k].shape)}"
             for k in sorted(set(ours) & set(ckpt.state_dict))
             if ckpt.state_dict[k].shape != ours[k].shape]
    if missing or unexpected or wrong:
        parts = [f"missing keys: {_listed(missing)}" if missing else "",
                 f"unexpected keys: {_listed(unexpected)}" if unexpected else "",
                 f"wrong shapes: {'; '.join(wrong[:_LIST_SHOWN])}" if wrong else ""]
        raise CheckpointError("checkpoint does not fit the model: "
                              + " | ".join(p for p in parts if p))
    model.load_state_dict(ckpt.state_dict, strict=True)
    if model.encoder.relu != (ckpt.encoder_activation == "relu"):
        raise CheckpointError(f"the checkpoint's encoder_activation={ckpt.encoder_activation} "
                              "differs from the model's: build the model with "
                              f"model.encoder_activation={ckpt.encoder_activation}")


def build_from_checkpoint(path: str | Path, model_cfg) -> tuple[object, dict, Checkpoint]:
    """(model with the checkpoint's weights, the model config it implies, the checkpoint).

    The checkpoint fixes the architecture (ARCH_KNOBS); ``time_len``, ``decoder`` and
    ``truncate_k_blocks`` come from ``model_cfg``.
    """
    base = {k: model_cfg[k] for k in model_cfg}
    ckpt = read_checkpoint(path, base.get("decoder", "convtranspose"))
    if base.get("truncate_k_blocks") is not None:
        raise CheckpointError("model.truncate_k_blocks is set: a checkpoint holds every block, "
                              "expected model.truncate_k_blocks=null")
    merged = {**base, **ckpt.knobs, "encoder_activation": ckpt.encoder_activation}
    model = build_model(merged)
    load_into(model, ckpt)
    return model.eval(), merged, ckpt


def checkpoint_bytes(model, model_cfg, sample_rate: int | None = None) -> bytes:
    """Our checkpoint of ``model`` (built from ``model_cfg``) as bytes for an atomic write."""
    args = {k: model_cfg[k] for k in model_cfg}
    payload = {"format": FORMAT, "version": 1, "model_args": args, "sample_rate": sample_rate,
               "encoder_activation": "relu" if getattr(model.encoder, "relu", True) else "linear",
               "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def save_checkpoint(path: str | Path, model, model_cfg, sample_rate: int | None = None) -> Path:
    return write_bytes(path, checkpoint_bytes(model, model_cfg, sample_rate))
