"""Wav files in and out and resampling, through SciPy (``scipy.io.wavfile``,
``scipy.signal.resample_poly``), with the errors a user can cause (missing file, not a wav, an
unreadable format) raised as ``AudioError``: one line naming the file and what is accepted.
"""

from __future__ import annotations

import io
import struct
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..atomic import write_bytes

OUTPUT_FORMATS = ("pcm16", "float32")
#: what scipy.io.wavfile reads, as the error message names it
READABLE = "8/16/24/32-bit PCM or 32/64-bit float"


#: larger inputs are refused before reading: decoding to float32 takes 2-4x this in memory
MAX_AUDIO_BYTES = 1 << 30


class AudioError(ValueError):
    """A bad audio input, worded as one line."""


def check_finite(x: np.ndarray, rate: int, path) -> None:
    """NaN or inf samples would come out as noise or silence with no warning: refuse them."""
    bad = ~np.isfinite(x)
    if bad.any():
        first = int(np.argwhere(bad)[0][-1])
        raise AudioError(f"{path} has {int(bad.sum())} NaN or infinite sample(s), the first at "
                         f"{first / rate:.4f} s: expected finite samples (repair the file)")


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """(float32 samples [channels, T] in [-1, 1], sample rate) of a PCM or float .wav."""
    from scipy.io import wavfile

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file: expected a .wav file")
    with open(path, "rb") as f:
        head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise AudioError(f"{path} is not a RIFF/WAVE file: expected a .wav file")
    size = path.stat().st_size
    if size > MAX_AUDIO_BYTES:
        raise AudioError(f"{path} is {size / 2**30:.1f} GiB: expected at most "
                         f"{MAX_AUDIO_BYTES / 2**30:.0f} GiB of audio per file (split it)")
    try:
        with warnings.catch_warnings():  # chunks scipy does not read (LIST, ...) are fine
            warnings.simplefilter("ignore", wavfile.WavFileWarning)
            rate, data = wavfile.read(path, mmap=False)
    except (ValueError, EOFError, OSError, struct.error) as exc:  # scipy's, as it parses
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise AudioError(f"{path} has no readable fmt or data chunk ({first}): expected a "
                         f".wav file of {READABLE}") from None
    x = np.asarray(data)
    x = x[:, None] if x.ndim == 1 else x  # [T, channels]
    if x.dtype.kind == "f":
        x = x.astype(np.float32)
    elif x.dtype == np.uint8:  # 8-bit PCM is unsigned, centred on 128
        x = (x.astype(np.float32) - 128.0) / 128.0
    elif x.dtype.kind == "i":
        x = x.astype(np.float32) / float(np.iinfo(x.dtype).max + 1)
    else:
        raise AudioError(f"{path} holds {x.dtype} samples: expected {READABLE}")
    if rate < 1 or x.shape[1] < 1:
        raise AudioError(f"{path} declares {x.shape[1]} channels at {rate} Hz: not a usable .wav")
    if x.shape[0] == 0:
        raise AudioError(f"{path} has no samples: expected a non-empty .wav file")
    if x.dtype.kind == "f":
        check_finite(x.T, rate, path)
    return np.ascontiguousarray(x.T), int(rate)


def wav_bytes(samples: np.ndarray, rate: int, fmt: str = "pcm16") -> bytes:
    """Mono samples [T] as the bytes of a 16-bit PCM or 32-bit float .wav file."""
    from scipy.io import wavfile

    x = np.asarray(samples, np.float32).reshape(-1)
    if fmt == "pcm16":
        data = np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2")
    elif fmt == "float32":
        data = x.astype("<f4")
    else:
        raise ValueError(f"output format {fmt!r}: expected one of {', '.join(OUTPUT_FORMATS)}")
    buf = io.BytesIO()
    wavfile.write(buf, int(rate), data)
    return buf.getvalue()


def write_wav(path: str | Path, samples: np.ndarray, rate: int, fmt: str = "pcm16") -> Path:
    return write_bytes(path, wav_bytes(samples, rate, fmt))


def to_mono(x: np.ndarray, downmix: bool, path: str | Path = "input") -> np.ndarray:
    """[channels, T] -> [T]; several channels are averaged only when ``downmix`` allows it."""
    if x.shape[0] == 1:
        return x[0]
    if not downmix:
        raise AudioError(f"{path} has {x.shape[0]} channels: expected mono, or set "
                         "runtime.downmix=true to average the channels")
    return x.mean(axis=0).astype(np.float32)


def resample(x: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """``x`` [..., T] at ``dst_rate``: SciPy's polyphase resampler (``resample_poly``, its
    Kaiser-windowed low-pass) by the reduced ratio dst/src; ``ceil(T * dst / src)`` samples."""
    if src_rate == dst_rate:
        return np.asarray(x, np.float32)
    from scipy.signal import resample_poly

    ratio = Fraction(int(dst_rate), int(src_rate))
    return resample_poly(np.asarray(x, np.float64), ratio.numerator, ratio.denominator,
                         axis=-1).astype(np.float32)
