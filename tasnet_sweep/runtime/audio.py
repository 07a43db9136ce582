"""Wav files in and out (16/32-bit PCM, 32-bit float; any channel count) and a polyphase
resampler, with numpy and the stdlib only.

Errors a user can cause (missing file, not a wav, unsupported format) raise ``AudioError``
with one line naming the file and what is accepted.
"""

from __future__ import annotations

import io
import math
import struct
import wave
from fractions import Fraction
from pathlib import Path

import numpy as np

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
OUTPUT_FORMATS = ("pcm16", "float32")


class AudioError(ValueError):
    """A bad audio input, worded as one line."""


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """(float32 samples [channels, T] in [-1, 1], sample rate) of a PCM or float .wav."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file: expected a .wav file")
    data = path.read_bytes()
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError(f"{path} is not a RIFF/WAVE file: expected a .wav file")
    fmt, raw, pos = None, None, 12
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        if cid == b"fmt " and len(body) >= 16:
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == _EXTENSIBLE and len(body) >= 26:
                tag = struct.unpack("<H", body[24:26])[0]  # the sub-format GUID's first field
            fmt = (tag, channels, rate, bits)
        elif cid == b"data":
            raw = body
        pos += 8 + size + (size & 1)
    if fmt is None or raw is None:
        raise AudioError(f"{path} has no fmt or data chunk: not a readable .wav file")
    tag, channels, rate, bits = fmt
    if channels < 1 or rate < 1:
        raise AudioError(f"{path} declares {channels} channels at {rate} Hz: not a usable .wav")
    dtype = {(_PCM, 16): "<i2", (_PCM, 32): "<i4", (_FLOAT, 32): "<f4"}.get((tag, bits))
    if dtype is None:
        kind = {_PCM: "PCM", _FLOAT: "float"}.get(tag, f"format tag {tag}")
        raise AudioError(f"{path} is {bits}-bit {kind}: expected 16/32-bit PCM or 32-bit float")
    frame_bytes = channels * bits // 8
    raw = raw[:len(raw) - len(raw) % frame_bytes]
    x = np.frombuffer(raw, dtype=dtype).reshape(-1, channels).T.astype(np.float32)
    if tag == _PCM:
        x /= float(2 ** (bits - 1))
    if x.shape[1] == 0:
        raise AudioError(f"{path} has no samples: expected a non-empty .wav file")
    return np.ascontiguousarray(x), rate


def wav_bytes(samples: np.ndarray, rate: int, fmt: str = "pcm16") -> bytes:
    """Mono samples [T] as the bytes of a 16-bit PCM or 32-bit float .wav file."""
    x = np.asarray(samples, np.float32).reshape(-1)
    if fmt == "pcm16":
        pcm = np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2")
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(int(rate))
            w.writeframes(pcm.tobytes())
        return buf.getvalue()
    if fmt == "float32":  # the stdlib wave module writes PCM only: build the chunks by hand
        body = x.astype("<f4").tobytes()
        fmt_chunk = struct.pack("<4sIHHIIHH", b"fmt ", 16, _FLOAT, 1, int(rate), 4 * int(rate),
                                4, 32)
        data_chunk = struct.pack("<4sI", b"data", len(body)) + body
        return struct.pack("<4sI4s", b"RIFF", 4 + len(fmt_chunk) + len(data_chunk),
                           b"WAVE") + fmt_chunk + data_chunk
    raise ValueError(f"output format {fmt!r}: expected one of {', '.join(OUTPUT_FORMATS)}")


def write_wav(path: str | Path, samples: np.ndarray, rate: int, fmt: str = "pcm16") -> Path:
    from ..atomic import write_bytes

    return write_bytes(path, wav_bytes(samples, rate, fmt))


def to_mono(x: np.ndarray, downmix: bool, path: str | Path = "input") -> np.ndarray:
    """[channels, T] -> [T]; several channels are averaged only when ``downmix`` allows it."""
    if x.shape[0] == 1:
        return x[0]
    if not downmix:
        raise AudioError(f"{path} has {x.shape[0]} channels: expected mono, or set "
                         "runtime.downmix=true to average the channels")
    return x.mean(axis=0).astype(np.float32)


def _lowpass_bank(up: int, down: int, half_taps: int, beta: float) -> np.ndarray:
    """Kaiser-windowed sinc at the upsampled rate, cut at the lower Nyquist; gain ``up``."""
    cutoff = 0.5 / max(up, down)  # cycles per upsampled sample
    n = np.arange(-half_taps * up, half_taps * up + 1, dtype=np.float64)
    h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(len(n), beta)
    return h * up


def resample(x: np.ndarray, src_rate: int, dst_rate: int, half_taps: int = 32,
             beta: float = 8.6) -> np.ndarray:
    """Polyphase resampling of ``x`` [..., T] by dst/src (a rational ratio).

    Equivalent to zero-stuffing by ``up``, low-pass filtering, and keeping every ``down``-th
    sample, but each output sample only touches the ``2*half_taps+1`` input samples its filter
    phase needs.  The output has ``ceil(T * dst / src)`` samples, aligned at t=0.
    """
    if src_rate == dst_rate:
        return np.asarray(x, np.float32)
    ratio = Fraction(int(dst_rate), int(src_rate))
    up, down = ratio.numerator, ratio.denominator
    # enough zero crossings of the (narrower, when downsampling) low-pass on each side
    half_taps = math.ceil(half_taps * max(1.0, down / up))
    h = _lowpass_bank(up, down, half_taps, beta)
    centre = half_taps * up  # index of h's peak
    x = np.asarray(x, np.float64)
    t_in = x.shape[-1]
    n_out = math.ceil(t_in * up / down)
    out = np.empty(x.shape[:-1] + (n_out,), np.float64)
    k = np.arange(-half_taps, half_taps)  # distances phase + k*up stay inside h
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(half_taps + 1, half_taps + 1)])
    step = 8192
    for a in range(0, n_out, step):
        m = np.arange(a, min(n_out, a + step))
        pos = m * down  # position on the upsampled grid
        base = pos // up  # the input sample at or before it
        idx = base[:, None] - k[None, :]  # input samples in the filter's reach
        # each tap's weight: h at the upsampled distance between output and input sample
        taps = h[centre + (pos[:, None] - idx * up)]
        vals = padded[..., idx + half_taps + 1]
        out[..., a:a + len(m)] = np.sum(vals * taps, axis=-1)
    return out.astype(np.float32)
