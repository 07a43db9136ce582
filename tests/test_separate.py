"""python -m tasnet_sweep.commands.separate: a generated two-source mixture through the plan."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import REPO, TINY, compose_cfg

from tasnet_sweep.commands.separate import run_separate
from tasnet_sweep.model.convtasnet import build_model
from tasnet_sweep.runtime.audio import read_audio, resample, wav_bytes, write_wav
from tasnet_sweep.runtime.chunks import chunk_spans

SMALL = (*TINY, "model.time_len=1000")
TILED = ("tiling=blocked", "tiling.tile_width=40", "tiling.channel_block=8")
#: these tests separate with seeded untrained weights, on purpose
UNTRAINED = "runtime.random_weights=true"


def mixture(rate=8000, seconds=0.6):
    t = np.arange(int(rate * seconds)) / rate
    return (0.4 * np.sin(2 * np.pi * 330 * t) + 0.3 * np.sign(np.sin(2 * np.pi * 55 * t))
            ).astype(np.float32)


def test_onnxruntime_tiled_matches_torch_model_and_writes_outputs(tmp_path):
    mix = mixture()
    write_wav(tmp_path / "mix.wav", mix, 8000, "float32")
    cfg = compose_cfg(*SMALL, *TILED, UNTRAINED, "runtime=onnxruntime",
                      f"runtime.input={tmp_path}/mix.wav",
                      f"runtime.output_dir={tmp_path}/out", "runtime.output_format=float32",
                      "runtime.chunk_len=0")
    metrics = run_separate(cfg)
    outs = [read_audio(tmp_path / "out" / f"mix_s{k}.wav") for k in (1, 2)]
    got = np.stack([o[0][0] for o in outs])
    assert all(rate == 8000 for _, rate in outs) and got.shape == (2, len(mix))
    torch.manual_seed(cfg.runtime.seed)  # the same seeded weights the command used
    model = build_model(cfg.model)
    with torch.no_grad():
        ref = model(torch.from_numpy(mix).reshape(1, 1, 1, -1))[0, :, 0].numpy()
    np.testing.assert_allclose(got, ref, atol=1e-4)
    saved = json.loads((tmp_path / "out" / "mix_metrics.json").read_text())
    assert saved["runtime"] == "onnxruntime" and saved["tiling"] == "blocked"
    assert set(saved["latency_ms"]) >= {"encoder", "masker", "decoder", "npu_units"}
    assert saved["rtf_total"] > 0 and saved["npu_calls"] == metrics["npu_calls"] > 0


def test_chunked_runs_agree_across_runtimes_and_cover_every_sample(tmp_path):
    mix = mixture(seconds=0.5)
    write_wav(tmp_path / "mix.wav", mix, 8000, "float32")
    got = {}
    for rt in ("torch", "onnxruntime"):
        cfg = compose_cfg(*SMALL, *TILED, "model.norm=cLN", f"runtime={rt}",
                          f"runtime.input={tmp_path}/mix.wav", "runtime.output_format=float32",
                          UNTRAINED,
                          f"runtime.output_dir={tmp_path}/{rt}", "runtime.chunk_len=1500")
        assert run_separate(cfg)["chunks"] == len(chunk_spans(4000, 1500, 0.25)) > 2
        got[rt] = np.stack([read_audio(tmp_path / rt / f"mix_s{k}.wav")[0][0] for k in (1, 2)])
    np.testing.assert_allclose(got["onnxruntime"], got["torch"], atol=1e-4)
    spans = chunk_spans(4000, 1500, 0.25)
    assert spans[0][0] == 0 and spans[-1][1] == 4000
    assert all(b[0] < a[1] for a, b in zip(spans, spans[1:]))  # overlapping, no gaps


def test_resampler_keeps_a_tone_and_removes_what_cannot_be_kept():
    rate = 16000
    t = np.arange(rate) / rate
    y = resample(np.sin(2 * np.pi * 440 * t), rate, 8000)
    assert len(y) == 8000
    ref = np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)
    assert np.max(np.abs(y[200:-200] - ref[200:-200])) < 1e-3
    alias = resample(np.sin(2 * np.pi * 6000 * t), rate, 8000)  # above the new Nyquist
    assert np.sqrt(np.mean(alias[200:-200] ** 2)) < 1e-3
    up = resample(ref, 8000, 11025)
    assert len(up) == int(np.ceil(8000 * 11025 / 8000))


def _cli(args, cwd):
    env = {**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([sys.executable, "-m", "tasnet_sweep.commands.separate", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_cli_resamples_downmixes_or_refuses_in_one_line(tmp_path):
    mix = mixture(16000, 0.3)
    stereo = np.stack([mix, 0.5 * mix])
    (tmp_path / "st.wav").write_bytes(_stereo_wav(stereo, 16000))
    write_wav(tmp_path / "m16.wav", mix, 16000)
    (tmp_path / "bad.wav").write_bytes(b"RIFF0000WAVEnothing")
    base = [*SMALL, UNTRAINED, f"runtime.output_dir={tmp_path}/out"]
    cases = (([f"runtime.input={tmp_path}/m16.wav"], "runtime.resample=true"),
                         ([f"runtime.input={tmp_path}/st.wav", "runtime.resample=true"],
                          "runtime.downmix=true"),
                         ([f"runtime.input={tmp_path}/nope.wav"], "no such file"),
                         ([f"runtime.input={tmp_path}/bad.wav"], "fmt or data chunk"),
                         (["runtime.overlap=0.9"], "runtime.overlap=0.9"))
    for args, needle in cases:
        res = _cli([*base, *args], tmp_path)
        assert res.returncode == 2, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], res.stderr
        assert not (tmp_path / "out").exists() and not (tmp_path / "outputs").exists()
    res = _cli([*base, f"runtime.input={tmp_path}/st.wav", "runtime.resample=true",
                "runtime.downmix=true", "runtime.chunk_len=2000"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "chunk 2/" in res.stderr  # progress per chunk
    out, rate = read_audio(tmp_path / "out" / "st_s1.wav")
    assert rate == 16000 and out.shape == (1, stereo.shape[1])
    metrics = json.loads((tmp_path / "out" / "st_metrics.json").read_text())
    assert metrics["resampled"] and metrics["downmixed"] and metrics["model_sample_rate"] == 8000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.wav", "m16.wav", "out", "st.wav"]


def _stereo_wav(x: np.ndarray, rate: int) -> bytes:
    import io
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x.T, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def test_float_and_pcm_wavs_round_trip(tmp_path):
    x = mixture(seconds=0.1)
    for fmt, tol in (("float32", 0.0), ("pcm16", 1 / 32768)):
        (tmp_path / f"{fmt}.wav").write_bytes(wav_bytes(x, 8000, fmt))
        y, rate = read_audio(tmp_path / f"{fmt}.wav")
        assert rate == 8000 and np.max(np.abs(y[0] - x)) <= tol


def test_runtime_commands_refuse_multirun_and_bad_config_before_hydra_runs(capsys):
    from tasnet_sweep.runtime.entry import main

    ran = []
    prog = "tasnet_sweep.commands.separate"
    assert main(prog, lambda: ran.append(1), ["-m", "model.bn=8,16"]) == 2
    assert main(prog, lambda: ran.append(1), ["model.bn=0"]) == 2
    assert ran == []  # Hydra never started: nothing written
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith(f"{prog}: error: -m/--multirun is not supported")
    assert err[1] == f"{prog}: config error: model.bn=0 is invalid: expected a whole number >= 1"


def test_user_errors_become_one_line_and_exit_code_2(capsys):
    from tasnet_sweep.config import ConfigError
    from tasnet_sweep.runtime.audio import AudioError
    from tasnet_sweep.runtime.entry import user_errors

    for exc in (ConfigError(["runtime.input is not set"]), AudioError("x.wav: not a wav"),
                FileNotFoundError("no HEF for unit instance e0")):
        with pytest.raises(SystemExit) as stop, user_errors("tasnet_sweep.commands.check_device"):
            raise exc
        assert stop.value.code == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    with pytest.raises(RuntimeError), user_errors("tasnet_sweep.commands.check_device"):
        raise RuntimeError("a bug is not a user error: its traceback stays")
