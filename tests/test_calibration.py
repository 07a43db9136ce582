"""Calibration data: sources, NHWC shapes, length policies and the errors users see."""

import struct
import wave
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import compose_cfg

from tasnet_sweep.checks import validate
from tasnet_sweep.compile.calibration import (
    calibration_identity,
    fit_array,
    load_calibration,
    read_wav,
)
from tasnet_sweep.config import ConfigError

LATENT = [("input", [1, 8, 1, 20])]
TWO = [("input", [1, 8, 1, 20]), ("mask", [1, 16, 1, 20])]
WAVE = [("input", [1, 1, 1, 50])]


def cal(source="synthetic", path=None, policy="error", count=4, seed=0):
    return SimpleNamespace(source=source, path=str(path) if path else None, count=count,
                           seed=seed, input_length_policy=policy)


def one_error(fn, *args) -> str:
    with pytest.raises(ConfigError) as err:
        fn(*args)
    assert len(err.value.problems) == 1
    return err.value.problems[0]


def test_synthetic_is_nhwc_float32_per_input_and_seeded():
    a = load_calibration(cal(count=5), TWO, waveform=False)
    assert list(a) == ["input", "mask"]
    assert a["input"].shape == (5, 1, 20, 8) and a["mask"].shape == (5, 1, 20, 16)
    assert all(x.dtype == np.float32 and x.flags.c_contiguous for x in a.values())
    again = load_calibration(cal(count=5), TWO, waveform=False)
    other = load_calibration(cal(count=5, seed=1), TWO, waveform=False)
    assert np.array_equal(a["input"], again["input"])
    assert not np.array_equal(a["input"], other["input"])
    assert not np.array_equal(a["input"][..., :8], a["mask"][..., :8])  # inputs differ


def test_npz_single_array_is_used_and_cast_to_float32(tmp_path):
    data = np.random.default_rng(0).standard_normal((3, 1, 20, 8))  # float64
    np.savez(tmp_path / "c.npz", anything=data)
    got = load_calibration(cal("npz", tmp_path / "c.npz"), LATENT, waveform=False)["input"]
    assert got.dtype == np.float32 and got.shape == (3, 1, 20, 8)
    assert np.allclose(got, data, atol=1e-6)


def test_npz_keyed_by_input_name_for_multi_input_units(tmp_path):
    x = np.ones((2, 1, 20, 8), np.float32)
    m = np.full((2, 1, 20, 16), 2, np.float32)
    np.savez(tmp_path / "c.npz", mask=m, input=x)
    got = load_calibration(cal("npz", tmp_path / "c.npz"), TWO, waveform=False)
    assert list(got) == ["input", "mask"] and got["mask"][0, 0, 0, 0] == 2
    np.savez(tmp_path / "bad.npz", input=x, other=m)
    msg = one_error(load_calibration, cal("npz", tmp_path / "bad.npz"), TWO, False)
    assert "['input', 'other']" in msg and "input, mask" in msg


@pytest.mark.parametrize("array,words", [
    (np.zeros((3, 1, 20, 8), np.int16), ["dtype int16", "float32", "[N, 1, 20, 8]"]),
    (np.zeros((3, 20, 8), np.float32), ["rank 3", "rank 4", "[N, 1, 20, 8]"]),
    (np.zeros((3, 8, 1, 20), np.float32), ["[3, 8, 1, 20]", "8 channels last"]),  # NCHW given
    (np.zeros((3, 1, 21, 8), np.float32), ["time length 21", "takes 20",
                                           "input_length_policy=crop"]),
    (np.zeros((3, 1, 19, 8), np.float32), ["time length 19", "takes 20",
                                           "input_length_policy=pad"]),
])
def test_wrong_data_is_one_clear_line_with_expected_and_given(array, words):
    msg = one_error(fit_array, array, [1, 8, 1, 20], "input", "error")
    for w in words:
        assert w in msg, (w, msg)


def test_pad_zero_pads_and_crop_cuts_the_time_axis():
    x = np.arange(3 * 17 * 8, dtype=np.float32).reshape(3, 1, 17, 8)
    padded = fit_array(x, [1, 8, 1, 20], "input", "pad")
    assert padded.shape == (3, 1, 20, 8)
    assert np.array_equal(padded[:, :, :17], x) and not padded[:, :, 17:].any()
    y = np.arange(3 * 25 * 8, dtype=np.float32).reshape(3, 1, 25, 8)
    cropped = fit_array(y, [1, 8, 1, 20], "input", "crop")
    assert np.array_equal(cropped, y[:, :, :20])
    # each policy handles one direction only and names the other
    assert "input_length_policy=crop (now pad)" in one_error(
        fit_array, y, [1, 8, 1, 20], "input", "pad")


def write_pcm16(path, samples, rate=8000, channels=1, width=2):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, "<i2" if width == 2 else "u1").tobytes())


def write_float32(path, samples, rate=8000):
    data = np.asarray(samples, "<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + \
        b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def test_wav_reader_scales_pcm16_and_reads_ieee_float(tmp_path):
    write_pcm16(tmp_path / "a.wav", [16384, -32768, 0])
    x, rate = read_wav(tmp_path / "a.wav")
    assert rate == 8000 and x.dtype == np.float32 and list(x) == [0.5, -1.0, 0.0]
    write_float32(tmp_path / "f.wav", [0.25, -0.75], rate=16000)
    y, rate = read_wav(tmp_path / "f.wav")
    assert rate == 16000 and list(y) == [0.25, -0.75]


def test_wav_dir_gives_one_frame_per_file_with_pad_and_crop(tmp_path):
    write_pcm16(tmp_path / "a.wav", np.full(70, 16384))  # longer than 50
    write_float32(tmp_path / "b.wav", np.full(30, 0.5))  # shorter
    (tmp_path / "notes.txt").write_text("ignored")
    cfg = cal("wav_dir", tmp_path, policy="crop")
    assert "b.wav has time length 30" in one_error(load_calibration, cfg, WAVE, True)
    write_float32(tmp_path / "b.wav", np.full(60, 0.5))
    got = load_calibration(cfg, WAVE, waveform=True)["input"]
    assert got.shape == (2, 1, 50, 1) and got.dtype == np.float32
    assert np.allclose(got[0], 0.5) and np.allclose(got[1], 0.5)
    write_pcm16(tmp_path / "b.wav", np.full(30, 8192))
    padded = load_calibration(cal("wav_dir", tmp_path, policy="pad"), [("input", [1, 1, 1, 80])],
                              True)["input"]
    assert padded.shape == (2, 1, 80, 1)
    assert np.allclose(padded[1, 0, :30, 0], 0.25) and not padded[1, 0, 30:].any()


@pytest.mark.parametrize("make,words", [
    (lambda p: write_pcm16(p, np.zeros((50, 2)), channels=2), "2 channels: expected mono"),
    (lambda p: write_pcm16(p, np.zeros(50), width=1), "8-bit PCM: expected 16-bit PCM"),
    (lambda p: p.write_bytes(b"not a wave file at all"), "not a readable .wav"),
])
def test_bad_wav_files_are_named_in_one_line(tmp_path, make, words):
    make(tmp_path / "x.wav")
    msg = one_error(load_calibration, cal("wav_dir", tmp_path), WAVE, True)
    assert words in msg and "x.wav" in msg


def test_wav_dir_only_for_waveform_units_and_one_sample_rate(tmp_path):
    write_pcm16(tmp_path / "a.wav", np.zeros(50))
    msg = one_error(load_calibration, cal("wav_dir", tmp_path), LATENT, False)
    assert "waveform" in msg and "[1, 8, 1, 20]" in msg
    write_pcm16(tmp_path / "b.wav", np.zeros(50), rate=16000)
    assert "mixes sample rates [8000, 16000]" in one_error(
        load_calibration, cal("wav_dir", tmp_path), WAVE, True)


def test_calibration_identity_follows_the_file_content(tmp_path):
    np.savez(tmp_path / "c.npz", x=np.zeros((1, 1, 20, 8), np.float32))
    first = calibration_identity(cal("npz", tmp_path / "c.npz"))
    np.savez(tmp_path / "c.npz", x=np.ones((1, 1, 20, 8), np.float32))
    assert calibration_identity(cal("npz", tmp_path / "c.npz")) != first
    assert calibration_identity(cal(seed=1)) != calibration_identity(cal(seed=2))


def test_config_checks_name_key_value_and_accepted(tmp_path):
    problems = validate(compose_cfg(
        "compiler=hailo_dfc", "compiler.calibration.source=npz",
        "compiler.calibration.input_length_policy=stretch", "compiler.calibration.count=0",
        "compiler.context_switch=maybe", "compiler.max_utilization=1.5"))
    assert "compiler.calibration.input_length_policy='stretch' is invalid: expected one of " \
           "error, pad, crop" in problems
    assert "compiler.calibration.count=0 is invalid: expected a whole number >= 1" in problems
    assert any(p.startswith("compiler.calibration.path is not set") for p in problems)
    assert any(p.startswith("compiler.context_switch='maybe'") for p in problems)
    assert any(p.startswith("compiler.max_utilization=1.5") for p in problems)
    missing = validate(compose_cfg("compiler=hailo_dfc", "compiler.calibration.source=wav_dir",
                                   f"compiler.calibration.path={tmp_path / 'nowhere'}"))
    assert missing == [f"compiler.calibration.path='{tmp_path / 'nowhere'}' does not exist: "
                       "expected a folder of mono .wav files"]
    assert validate(compose_cfg("compiler.calibration.source=npz")) == []  # estimate ignores it
