"""Calibration data for the Dataflow Compiler's optimize (quantize) step.

A unit's inputs are NCHW ``[1, C, 1, W]``; the DFC wants NHWC float32 ``[N, 1, W, C]`` per input.
Sources (``compiler.calibration.source``):
- ``synthetic``: ``count`` seeded standard-normal frames per input;
- ``npz``: a user's file with one array (single-input units) or one array per input name, NHWC;
- ``wav_dir``: a folder of mono .wav files (16-bit PCM or 32-bit float), one frame per file,
  only for units whose input is the waveform (C = 1).
Shapes are checked here, before any compile: ``input_length_policy=error`` stops with the
expected and the given shape, ``pad`` zero-pads short time axes, ``crop`` cuts long ones.
"""

from __future__ import annotations

import hashlib
import struct
import wave
from pathlib import Path

import numpy as np

from ..config import CALIBRATION_SOURCES, ConfigError

_WAVE_FORMAT_PCM, _WAVE_FORMAT_FLOAT, _WAVE_FORMAT_EXTENSIBLE = 1, 3, 0xFFFE


def nhwc_shape(nchw: list[int], frames: int) -> tuple[int, int, int, int]:
    """``[1, C, 1, W]`` -> ``(frames, 1, W, C)``."""
    _, c, h, w = nchw
    return (frames, h, w, c)


def load_calibration(cal_cfg, inputs: list[tuple[str, list[int]]], waveform: bool
                     ) -> dict[str, np.ndarray]:
    """One NHWC float32 array per unit input (ordered as ``inputs``), checked against its shape.

    ``waveform`` says the unit's input is audio samples (only then is ``wav_dir`` valid).
    Raises ``ConfigError`` (one line each) for data that does not fit the unit.
    """
    if cal_cfg.source == "synthetic":
        return _synthetic(inputs, cal_cfg.count, cal_cfg.seed)
    if cal_cfg.source == "npz":
        arrays = _from_npz(Path(cal_cfg.path), [n for n, _ in inputs])
    elif cal_cfg.source == "wav_dir":
        arrays = {inputs[0][0]: _from_wav_dir(Path(cal_cfg.path), inputs, waveform,
                                              cal_cfg.input_length_policy)}
    else:
        raise ConfigError([f"compiler.calibration.source={cal_cfg.source!r} is invalid: "
                           f"expected one of {', '.join(CALIBRATION_SOURCES)}"])
    return {name: fit_array(arrays[name], shape, name, cal_cfg.input_length_policy)
            for name, shape in inputs}


def _synthetic(inputs, count: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(nhwc_shape(shape, count), dtype=np.float32)
            for name, shape in inputs}


def _from_npz(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    key = "compiler.calibration.path"
    if not path.is_file():
        raise ConfigError([f"{key}={str(path)!r} does not exist: expected an .npz file"])
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:  # a corrupt file, a pickle inside, not an npz at all
        raise ConfigError([f"{key}={str(path)!r} could not be read as .npz ({exc})"]) from None
    if len(arrays) == 1 and len(names) == 1:
        return {names[0]: next(iter(arrays.values()))}
    missing = [n for n in names if n not in arrays]
    if missing:
        raise ConfigError([f"{key}={str(path)!r} has arrays {sorted(arrays)}: expected "
                           + ("one array or " if len(names) == 1 else "")
                           + f"one array per unit input named {', '.join(names)}"])
    return {n: arrays[n] for n in names}


def fit_array(array: np.ndarray, nchw: list[int], name: str, policy: str) -> np.ndarray:
    """``array`` as NHWC float32 ``[N, 1, W, C]`` for input ``name``, or a ConfigError."""
    expected = nhwc_shape(nchw, -1)
    want = f"NHWC [N, {expected[1]}, {expected[2]}, {expected[3]}]"
    where = f"calibration data for input {name!r}"
    if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.floating):
        dtype = getattr(array, "dtype", type(array).__name__)
        raise ConfigError([f"{where} has dtype {dtype}: expected float32 {want}"])
    if array.ndim != 4:
        raise ConfigError([f"{where} has shape {list(array.shape)} (rank {array.ndim}): "
                           f"expected rank 4, {want}"])
    n, h, w, c = array.shape
    if n < 1 or h != expected[1] or c != expected[3]:
        raise ConfigError([f"{where} has shape {list(array.shape)}: expected {want} "
                           f"(N >= 1 frames, {expected[3]} channels last)"])
    array = fit_length(array, axis=2, width=expected[2], policy=policy,
                       what=f"{where} (shape {list(array.shape)}, expected {want})")
    return np.ascontiguousarray(array, dtype=np.float32)


def fit_length(array: np.ndarray, axis: int, width: int, policy: str, what: str) -> np.ndarray:
    """Pad or crop ``axis`` to ``width`` as ``policy`` allows; else a ConfigError."""
    given = array.shape[axis]
    if given == width:
        return array
    if given < width and policy == "pad":
        pad = [(0, 0)] * array.ndim
        pad[axis] = (0, width - given)
        return np.pad(array, pad)
    if given > width and policy == "crop":
        return np.take(array, np.arange(width), axis=axis)
    fix = "pad" if given < width else "crop"
    raise ConfigError([f"{what} has time length {given} where the unit takes {width}: make "
                       f"them equal, or set compiler.calibration.input_length_policy={fix} "
                       f"(now {policy})"])


def _from_wav_dir(path: Path, inputs, waveform: bool, policy: str) -> np.ndarray:
    key = "compiler.calibration.path"
    name, shape = inputs[0]
    if not waveform or len(inputs) != 1 or shape[1] != 1:
        takes = ", ".join(f"{n} {s}" for n, s in inputs)
        raise ConfigError([f"compiler.calibration.source=wav_dir needs a unit whose input is the "
                           f"waveform (C = 1; unit=full, encoder or encoder_only), but this unit "
                           f"takes {takes}: use synthetic or npz"])
    if not path.is_dir():
        raise ConfigError([f"{key}={str(path)!r} is not a directory: expected a folder of .wav "
                           "files"])
    files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".wav" and p.is_file())
    if not files:
        raise ConfigError([f"{key}={str(path)!r} has no .wav files"])
    width = shape[3]
    frames, rates = [], set()
    for f in files:
        samples, rate = read_wav(f)
        rates.add(rate)
        frames.append(fit_length(samples, 0, width, policy, what=f"{f}"))
    if len(rates) > 1:
        raise ConfigError([f"{key}={str(path)!r} mixes sample rates {sorted(rates)}: expected "
                           "one rate for all files"])
    return np.stack(frames).astype(np.float32).reshape(len(frames), 1, width, 1)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """(mono float32 samples in [-1, 1), sample rate) of a 16-bit PCM or 32-bit float .wav."""
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
        fmt = _WAVE_FORMAT_PCM
    except wave.Error as exc:
        if "unknown format" not in str(exc):
            raise ConfigError([f"{path} is not a readable .wav file ({exc})"]) from None
        # the stdlib wave module reads PCM only; IEEE-float files are read from their chunks
        fmt, channels, width, rate, raw = _read_float_wav(path)
    except (EOFError, OSError) as exc:
        raise ConfigError([f"{path} is not a readable .wav file ({exc})"]) from None
    if channels != 1:
        raise ConfigError([f"{path} has {channels} channels: expected mono (1 channel)"])
    if fmt == _WAVE_FORMAT_PCM and width == 2:
        return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0, rate
    if fmt == _WAVE_FORMAT_FLOAT and width == 4:
        samples = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        if not np.isfinite(samples).all():  # NaN in calibration data ruins every scale
            raise ConfigError([f"{path} has {int((~np.isfinite(samples)).sum())} NaN or "
                               "infinite samples: expected finite calibration audio"])
        return samples, rate
    kind = "PCM" if fmt == _WAVE_FORMAT_PCM else "float"
    raise ConfigError([f"{path} is {8 * width}-bit {kind}: expected 16-bit PCM or 32-bit float"])


def _read_float_wav(path: Path) -> tuple[int, int, int, int, bytes]:
    """(format, channels, sample width, rate, data) from a RIFF/WAVE file's fmt and data chunks."""
    data = path.read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ConfigError([f"{path} is not a RIFF/WAVE file"])
    pos, fmt, raw = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == _WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
                tag = struct.unpack("<H", body[24:26])[0]  # the sub-format GUID's first field
            fmt = (tag, channels, bits // 8, rate)
        elif cid == b"data":
            raw = body
        pos += 8 + size + (size & 1)
    if fmt is None or raw is None:
        raise ConfigError([f"{path} has no fmt or data chunk: not a readable .wav file"])
    if fmt[0] not in (_WAVE_FORMAT_PCM, _WAVE_FORMAT_FLOAT):
        raise ConfigError([f"{path} has wave format tag {fmt[0]}: expected 16-bit PCM or "
                           "32-bit float"])
    return fmt[0], fmt[1], fmt[2], fmt[3], raw


def calibration_identity(cal_cfg) -> dict:
    """What about the calibration can change a compile's answer (for the cache key)."""
    ident = {"source": cal_cfg.source, "input_length_policy": cal_cfg.input_length_policy}
    if cal_cfg.source == "synthetic":
        ident.update(count=cal_cfg.count, seed=cal_cfg.seed)
        return ident
    path = Path(cal_cfg.path or "")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".wav") \
        if path.is_dir() else [path]
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        if f.is_file():
            h.update(hashlib.sha256(f.read_bytes()).digest())
    ident["content_sha256"] = h.hexdigest()
    return ident

