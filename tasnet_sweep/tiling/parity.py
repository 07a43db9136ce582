"""Stitched output against the untiled PyTorch model: max abs error and SI-SNR per source."""

from __future__ import annotations

import numpy as np

from .stitch import run_plan

#: SI-SNR reported for an exact match (the error energy is zero)
SI_SNR_CAP_DB = 200.0
PATHS = ("decoder", "masker", "full")


def si_snr_db(est: np.ndarray, ref: np.ndarray) -> float:
    """Scale-invariant SNR of ``est`` against ``ref`` (both flattened, zero-mean), in dB."""
    est = est.astype(np.float64).ravel() - est.mean()
    ref = ref.astype(np.float64).ravel() - ref.mean()
    target = (est @ ref) / max(ref @ ref, 1e-300) * ref
    noise = est - target
    if noise @ noise == 0:
        return SI_SNR_CAP_DB
    return float(min(SI_SNR_CAP_DB, 10 * np.log10(max(target @ target, 1e-300) / (noise @ noise))))


def _rows(path: str, time_len: int, est: np.ndarray, ref: np.ndarray, n_src: int) -> list[dict]:
    est, ref = est.reshape(n_src, -1), ref.reshape(n_src, -1)
    return [{"path": path, "time_len": time_len, "source": s,
             "max_abs": float(np.max(np.abs(est[s] - ref[s]))),
             "ref_max_abs": float(np.max(np.abs(ref[s]))),
             "si_snr_db": si_snr_db(est[s], ref[s])} for s in range(n_src)]


def measure_parity(model, plan, params, executor, time_len: int, seed: int = 0,
                   paths=PATHS) -> list[dict]:
    """Per source and path: decoder (reference features in), masker (reference encoder
    output in, masks out) and the full chain (waveform in, waveforms out)."""
    import torch

    n_src = plan.model["n_src"]
    wav = torch.randn(1, 1, 1, time_len, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        enc = model.encoder(wav)
        masks = model.masker(enc)
        feats = model.apply_masks(enc, masks)
        ref = model(wav)
    rows: list[dict] = []
    if "decoder" in paths:
        env = run_plan(plan, params, executor, {"feats": feats[0, :, 0].numpy(),
                                                "time_len": time_len}, stages=("decoder",))
        rows += _rows("decoder", time_len, env["sources"], ref[0, :, 0].numpy(), n_src)
    if "masker" in paths:
        env = run_plan(plan, params, executor, {"enc": enc[0, :, 0].numpy()},
                       stages=("masker",))
        rows += _rows("masker", time_len, env["masks"], masks[0, :, 0].numpy(), n_src)
    if "full" in paths:
        env = run_plan(plan, params, executor, {"wav": wav[0, 0].numpy()})
        rows += _rows("full", time_len, env["sources"], ref[0, :, 0].numpy(), n_src)
    return rows


def parity_tsv(rows: list[dict]) -> str:
    cols = ["path", "time_len", "source", "max_abs", "ref_max_abs", "si_snr_db"]
    lines = ["\t".join(cols)]
    for r in rows:
        lines.append("\t".join(f"{r[c]:.6g}" if isinstance(r[c], float) else str(r[c])
                               for c in cols))
    return "\n".join(lines) + "\n"
