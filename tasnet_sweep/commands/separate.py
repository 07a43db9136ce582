"""``python -m tasnet_sweep.commands.separate runtime.input=mix.wav``: one .wav per source.

The mixture goes through the M4 plan (``tiling=none|temporal|blocked``) on ``runtime=torch``,
``onnxruntime`` or ``hailort``, in chunks of ``runtime.chunk_len`` samples (null: the model's
``time_len``; 0: the whole file) crossfaded over ``runtime.overlap``.  Writes
``<stem>_s<k>.wav`` and ``<stem>_metrics.json`` (latency per stage, real-time factor) into
``runtime.output_dir``.  Bad input: one line, exit 2, nothing written.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import hydra

from ..atomic import write_json
from ..config import ConfigError, register_configs
from ..resources import CONF_PKG
from ..runtime.entry import command, user_errors
from ..runtime.session import TimedExecutor, load_deployment, make_executor

PROG = "tasnet_sweep.commands.separate"
register_configs()


def load_mixture(cfg, model_rate: int, min_samples: int = 1) -> tuple:
    """(mono samples at the model's rate, facts about the input); bad input raises.
    ``min_samples``: the fewest the model can take (one encoder window)."""
    from ..runtime.audio import read_audio, resample, to_mono

    r = cfg.runtime
    if not r.input:
        raise ConfigError(["runtime.input is not set: expected runtime.input=<mixture.wav>"])
    t0 = time.perf_counter()
    x, rate = read_audio(r.input)
    channels = x.shape[0]
    mono = to_mono(x, r.downmix, r.input)
    read_s = time.perf_counter() - t0
    if rate != model_rate and not r.resample:
        raise ConfigError([f"{r.input} is sampled at {rate} Hz but the model expects "
                           f"{model_rate} Hz: set runtime.resample=true or give a "
                           f"{model_rate} Hz file"])
    t0 = time.perf_counter()
    mono = resample(mono, rate, model_rate)
    if mono.shape[-1] < min_samples:
        raise ConfigError([f"{r.input} holds {x.shape[1]} samples at {rate} Hz: expected at "
                           f"least {min_samples} at {model_rate} Hz (one window of the "
                           "encoder, model.kernel_size)"])
    facts = {"input": str(r.input), "input_sample_rate": rate, "input_channels": channels,
             "downmixed": channels > 1, "resampled": rate != model_rate,
             "input_samples": int(x.shape[1]), "duration_s": x.shape[1] / rate}
    return mono, facts, {"read": read_s, "resample_in": time.perf_counter() - t0}


def device_metrics(executor, audio_s: float) -> dict | None:
    """HailoRT only: HEFs used, configure waves and network-group switches, also per second."""
    waves = getattr(executor, "waves", None)
    if waves is None:
        return None
    stats = waves.stats()
    return {**stats, "n_hefs": executor.hefs_used(),
            "per_audio_s": {k: stats[k] / audio_s for k in
                            ("configures", "configure_waves", "network_group_switches")}}


def run_separate(cfg) -> dict:
    """Separate ``runtime.input``; returns the metrics that were written."""
    from ..runtime.audio import resample, write_wav
    from ..runtime.chunks import separate_file

    r = cfg.runtime
    if not r.checkpoint and not r.random_weights:
        raise ConfigError(["runtime.checkpoint is not set: an untrained model separates nothing; "
                           "expected runtime.checkpoint=<asteroid model.serialize(), lightning "
                           ".ckpt or tasnet_sweep checkpoint>, or runtime.random_weights=true to "
                           "run untrained weights on purpose"])
    t0 = time.perf_counter()
    dep = load_deployment(cfg)
    setup_s = time.perf_counter() - t0
    t_all = time.perf_counter()
    wav, facts, host_s = load_mixture(cfg, dep.sample_rate, int(dep.model_cfg["kernel_size"]))
    t0 = time.perf_counter()
    executor = make_executor(cfg, dep.plan, dep.params)
    if hasattr(executor, "warm_up"):  # onnxruntime: build every session before timing
        executor.warm_up()
    setup_s += time.perf_counter() - t0
    t_all += time.perf_counter() - t0  # setup is reported apart from the per-file latency
    for note in dep.notes:
        print(f"{PROG}: {note}", file=sys.stderr)
    timed = TimedExecutor(executor)
    chunk = dep.model_cfg["time_len"] if r.chunk_len is None else int(r.chunk_len)
    t0 = time.perf_counter()
    try:
        sources, run = separate_file(dep.plan, dep.params, timed, wav, chunk, r.overlap)
    finally:
        timed.close()
    separate_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out_rate = facts["input_sample_rate"]
    if out_rate != dep.sample_rate:
        sources = resample(sources, dep.sample_rate, out_rate)[:, :facts["input_samples"]]
    host_s["resample_out"] = time.perf_counter() - t0
    out_dir = Path(r.output_dir)
    stem = Path(r.input).stem
    t0 = time.perf_counter()
    paths = [str(write_wav(out_dir / f"{stem}_s{k + 1}.wav", s, out_rate, r.output_format))
             for k, s in enumerate(sources)]
    host_s["write"] = time.perf_counter() - t0
    total_s = time.perf_counter() - t_all
    audio_s = facts["duration_s"]
    metrics = {
        **facts, "runtime": r.name, "tiling": dep.plan.mode, "tile_width": dep.plan.tile_width,
        "channel_block": dep.plan.channel_block, "checkpoint": r.checkpoint,
        "weights": dep.weights, "device": device_metrics(executor, audio_s),
        "model_sample_rate": dep.sample_rate, "output_sample_rate": out_rate,
        "output_format": r.output_format, "chunk_len": chunk, "overlap": r.overlap,
        "chunks": run["chunks"], "npu_calls": timed.calls, "outputs": paths,
        "latency_ms": {**{k: 1e3 * v for k, v in run["stages_s"].items()},
                       "npu_units": 1e3 * timed.seconds,
                       "host": 1e3 * (separate_s - timed.seconds),
                       **{k: 1e3 * v for k, v in host_s.items()}},
        "setup_ms": 1e3 * setup_s,
        "latency_ms_separation": 1e3 * separate_s,
        "latency_ms_total": 1e3 * total_s,
        "rtf_separation": separate_s / audio_s,
        "rtf_total": total_s / audio_s,
        "notes": dep.notes,
    }
    write_json(out_dir / f"{stem}_metrics.json", metrics)
    print(f"{PROG}: {len(paths)} sources of {audio_s:.2f} s in {out_dir} "
          f"(rtf {metrics['rtf_total']:.3f}, {r.name}, tiling={dep.plan.mode})", file=sys.stderr)
    return metrics


@hydra.main(version_base="1.3", config_path=CONF_PKG, config_name="config")
def separate_app(cfg) -> None:
    with user_errors(PROG):
        run_separate(cfg)


ABOUT = ("a mixture (runtime.input=FILE.wav) through the deployment plan, one .wav per "
         "source into runtime.output_dir")

main = command(PROG, separate_app, ABOUT)


if __name__ == "__main__":
    sys.exit(main())
