"""One trial, once: config -> unit -> ONNX export + checks -> compile backend -> records.

This is the only place that strings the stages together; sweeps and experiments only choose
configs, and nothing here knows how a backend compiles.  A repeated trial (same recipe) is
answered from the trial cache without importing torch; a new recipe that exports to an ONNX
graph compiled before is answered from the compile cache without recompiling.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from omegaconf import OmegaConf

from . import __version__
from .atomic import write_json, write_text
from .checks import validate
from .compile import make_backend
from .compile.base import STAGES, CompileOutcome, CompileRequest, Failure, StageResult
from .compile.cache import CachedBackend, CompileCache, TrialCache, key_of
from .compile.failures import write_failure_files
from .config import ConfigError
from .model.catalog import SAMPLE_RATE, WAVEFORM_UNITS
from .report.tsv import KNOB_COLUMNS, append_row
from .results import RESULT_SCHEMA, TrialResult

log = logging.getLogger(__name__)


def knobs_of(cfg) -> dict:
    return {k: cfg.model[k] for k in KNOB_COLUMNS}


def _versions() -> dict:
    found = {"tasnet_sweep": __version__}
    for dist in ("torch", "onnx"):
        found[dist] = installed_version(dist)
    return found


def installed_version(dist: str) -> str | None:
    """``importlib.metadata.version(dist)`` of a package installed under its own import name,
    read from the headers of the ``.dist-info/METADATA`` beside it: the general lookup imports
    ``importlib.metadata`` and reads every installed distribution (together about 15 ms of a
    cache hit's 0.4 s)."""
    from importlib import util

    spec = util.find_spec(dist)  # finds a top-level package without importing it
    if spec is not None and spec.origin:
        for info in Path(spec.origin).parent.parent.glob(f"{dist}-*.dist-info"):
            headers = _metadata_headers(info / "METADATA", ("Name", "Version"))
            if headers.get("Name", "").lower() == dist and headers.get("Version"):
                return headers["Version"]
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _metadata_headers(path: Path, wanted: tuple[str, ...]) -> dict[str, str]:
    """The ``wanted`` headers of a core-metadata file (RFC 822 style: ``Key: value`` lines up
    to the first blank line); empty when it cannot be read."""
    found: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip() or len(found) == len(wanted):
                    break
                key, sep, value = line.partition(":")
                if sep and key in wanted and key not in found:
                    found[key] = value.strip()
    except OSError:
        return {}
    return found


def recipe_key(cfg, backend, hw: dict) -> str:
    """Everything that determines a trial's record, without building anything."""
    plain = {k: OmegaConf.to_container(cfg[k], resolve=True)
             for k in ("model", "unit", "export", "tiling")}
    return key_of("trial", RESULT_SCHEMA, _versions(), plain, hw, backend.name,
                  backend.version(), backend.cache_identity())


def run(cfg, run_dir: str | Path, summary_path: str | Path | None = None) -> TrialResult:
    """Run one trial into ``run_dir`` and append its row to ``summary_path``; return the result."""
    problems = validate(cfg)
    if problems:
        raise ConfigError(problems)

    backend = make_backend(cfg.compiler, cfg.hw)  # a missing SDK or replay file stops here
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    started_at = time.time()
    t0 = time.perf_counter()
    write_text(run_dir / "config_resolved.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    hw = OmegaConf.to_container(cfg.hw, resolve=True)

    if cfg.tiling.mode != "none":
        record, outcome = _tiled(cfg, backend, hw, run_dir)
    else:
        record, outcome = _cached(cfg, backend, hw, run_dir)
        if record is None:
            record, outcome = _fresh(cfg, backend, hw, run_dir)
    deploy = record.get("deploy") or _one_hef_deploy(cfg, outcome)
    outcome = _within_deploy_limit(cfg, outcome, deploy)
    result = TrialResult(
        run_tag=cfg.run_tag, knobs=knobs_of(cfg), unit=record["unit"], params=record["params"],
        macs=record["macs"],
        export={**record["export"], "onnx_path": str(run_dir / record["onnx_name"])},
        onnx_name=record["onnx_name"], compile=outcome, deploy=deploy, started_at=started_at,
        calibration=record.get("calibration"), compile_key=record.get("compile_key"),
        tiling=record.get("tiling"))
    parity = result.export.get("parity_max_abs")
    if parity is not None and parity > cfg.export.parity_tol:
        result.status = "parity_fail"
        log.warning("ONNX parity %.3g exceeds export.parity_tol=%g", parity, cfg.export.parity_tol)
    if outcome.failure is not None:
        write_failure_files(outcome.failure, run_dir, evidence=outcome.evidence)
    result.seconds = time.perf_counter() - t0
    result.summary = summary_row(cfg, result, run_dir)
    write_json(run_dir / "result.json", result.as_dict())
    if summary_path is not None:
        try:
            append_row(summary_path, result.summary)
        except OSError as exc:  # the trial is kept: its row joins with the next append
            log.error("%s could not be updated (%s): this trial is in %s, and its row is added "
                      "by the next trial that can write there (or: python -m "
                      "tasnet_sweep.commands.rebuild_summary %s)", summary_path,
                      exc.strerror or exc, run_dir / "result.json", Path(summary_path).parent)
    return result


def _one_hef_deploy(cfg, outcome) -> dict:
    """An untiled trial's graph is one HEF: configured once, nothing to switch between while
    it runs chunk after chunk.  For the whole model the estimate's FPS bound gives a real-time
    factor (an estimate, labelled so)."""
    out = {"n_hefs": 1, "distinct_units": 1,
           "max_configured_networks": int(cfg.hw.max_configured_networks),
           "configure_waves_per_audio_s": 0.0, "configures_per_audio_s": 0.0,
           "switches_per_audio_s": 0.0, "chunk_len": int(cfg.model.time_len),
           "sample_rate": SAMPLE_RATE, "hefs": None}
    fps = outcome.metrics.get("est_fps")
    if fps and cfg.unit.name == "full" and outcome.evidence == "estimate":
        out["est_device_rtf"] = SAMPLE_RATE / cfg.model.time_len / fps
        out["est_device_note"] = "estimate: the whole model's FPS bound, one HEF, no switches"
    return out


def _within_deploy_limit(cfg, outcome, deploy: dict):
    """``tiling.max_hefs``: a plan that compiles but needs more HEFs fails its compile stage
    with family ``deploy_limit`` (more HEFs than a deployment may hold is not a result)."""
    limit, n = cfg.tiling.max_hefs, deploy["n_hefs"]
    if limit is None or n <= limit or outcome.failure is not None:
        return outcome
    outcome.failure = Failure("deploy_limit", "compile", message=(
        f"the plan needs {n} HEFs (one per distinct instance weights), more than "
        f"tiling.max_hefs={limit}: fewer, larger units (a larger tiling.channel_block) or no "
        "tiling need fewer"))
    outcome.stage("compile").ok = False
    return outcome


def _caches(cfg):
    return TrialCache(cfg.compiler.cache_dir), CompileCache(cfg.compiler.cache_dir)


def _cached(cfg, backend, hw, run_dir: Path):
    """(record, outcome) from the trial cache, or (None, None)."""
    if not cfg.compiler.cache:
        return None, None
    trials, compiles = _caches(cfg)
    record = trials.get(recipe_key(cfg, backend, hw))
    if record is None:
        return None, None
    entry = compiles.store.get(record["compile_key"])
    if entry is None:
        return None, None
    return record, compiles.restore(entry, run_dir, onnx_name=record["onnx_name"],
                                    net_name=_net_name(cfg.run_tag))


def _fresh(cfg, backend, hw, run_dir: Path):
    """Build, export, check and compile the unit; store the record for the next time."""
    import torch

    from .export import export_unit, onnx_parity
    from .model.units import build_unit, count_params

    torch.manual_seed(cfg.export.seed)
    unit = build_unit(cfg.model, cfg.unit)
    onnx_name = f"{unit.name}.onnx"
    exported = export_unit(unit, run_dir / onnx_name, opset=cfg.export.opset,
                           seed=cfg.export.seed)
    if cfg.export.parity:
        exported.parity_max_abs, exported.parity_seconds = onnx_parity(
            exported, [name for name, _ in unit.inputs])
    out_shape = exported.output_shapes[0]
    record = {
        "unit": {"name": unit.name, "description": unit.description, "layers": unit.layers,
                 "inputs": [{"name": n, "shape_nchw": s} for n, s in unit.inputs],
                 "outputs": unit.outputs, "output_shape_nchw": out_shape, **unit.extra,
                 "latent_width": unit.latent_width},
        "params": count_params(unit.module),
        "macs": exported.macs,
        "export": exported.as_dict(),
        "onnx_name": onnx_name,
    }
    signature = {**knobs_of(cfg), "unit": unit.name, "unit_op": unit.extra.get("op"),
                 "in_chan": unit.in_chan,
                 "out_chan": out_shape[1], "latent_width": unit.latent_width,
                 "hw_arch": cfg.hw.arch, "tiling": cfg.tiling.mode}
    if cfg.unit.width is not None:  # the graph does not depend on time_len then
        signature["time_len"] = None
    request = CompileRequest(unit_name=unit.name, net_name=_net_name(cfg.run_tag),
                             onnx_path=Path(exported.onnx_path), inputs=unit.inputs,
                             outputs=unit.outputs, work_dir=run_dir, knobs=signature)
    record["calibration"] = _check_calibration(cfg, backend, unit)
    if not cfg.compiler.cache:
        return record, backend.compile(request)
    trials, compiles = _caches(cfg)
    outcome, compile_key = compiles.compile(backend, request, hw, exported.sha256)
    if compiles.store.get(compile_key) is not None:  # transient failures are not stored
        record["compile_key"] = compile_key
        trials.put(recipe_key(cfg, backend, hw), record)
    return record, outcome


def _tiled(cfg, backend, hw, run_dir: Path):
    """Plan the model into small units, compile each distinct one, check the stitched output."""
    from .tiling.run import run_tiled  # here: a cache hit or an untiled trial needs none of it

    if cfg.compiler.cache:
        backend = CachedBackend(backend, CompileCache(cfg.compiler.cache_dir), hw)
    plan = run_tiled(cfg, run_dir, backend)
    return _tiled_record(cfg, plan, run_dir), _tiled_outcome(backend, plan)


def _tiled_outcome(backend, plan: dict):
    """One outcome for the whole plan: a stage passes when every distinct unit passes it; the
    first failing unit's failure, named, is the plan's."""
    units = plan["units"]
    outcomes = [CompileOutcome.from_dict(u["compile"]) for u in units]
    first_bad = next((o for o in outcomes if o.failure is not None), None)
    stages = [StageResult(s, all(o.stage(s).ok for o in outcomes),
                          sum(o.stage(s).seconds for o in outcomes),
                          log=f"{sum(bool(o.stage(s).ok) for o in outcomes)}/{len(outcomes)} "
                              "distinct units passed")
              for s in STAGES]
    failure = None
    if first_bad is not None:
        bad_unit = units[outcomes.index(first_bad)]["unit"]
        failure = first_bad.failure
        failure.message = f"unit {bad_unit}: {failure.message}"
    bracket = _plan_bracket(units, outcomes) if first_bad is None else None
    if bracket is not None:  # no unit fails and one is uncertain: so is the plan
        stages[STAGES.index("compile")].ok = None
    metrics = {"n_units": plan["n_units"], "n_instances": plan["n_instances"],
               "units_passed": sum(o.verdict == "pass" for o in outcomes),
               "compile_seconds_spent": _spent_on(outcomes),
               "parity_min_si_snr_db": plan["parity_min_si_snr_db"],
               **{k: v for k, v in plan["host_share"].items() if isinstance(v, (int, float))},
               "est_contexts": max((o.metrics.get("est_contexts") or 0 for o in outcomes),
                                   default=None)}
    return CompileOutcome(backend.name, backend.evidence, stages, failure, metrics,
                          tool_version=outcomes[0].tool_version if outcomes else "",
                          cache_hit=bool(outcomes) and all(o.cache_hit for o in outcomes),
                          bracket=bracket)


def _plan_bracket(units: list[dict], outcomes: list) -> dict | None:
    """The bracket of the first uncertain unit (named), or None when no unit is uncertain."""
    unsure = next((o for o in outcomes if o.verdict == "uncertain"), None)
    if unsure is None:
        return None
    return {**unsure.bracket, "unit": units[outcomes.index(unsure)]["unit"]}


def _spent_on(outcomes: list) -> float:
    """Compile seconds the plan's distinct units took now: cache hits took none."""
    return sum(sum(s.seconds for s in o.stages) for o in outcomes if not o.cache_hit)


def compile_seconds(outcome) -> tuple[float, float]:
    """(the stages' seconds as recorded, the seconds spent on them now): a cache hit carries
    the original compile's time and spent none; a tiled plan spent its fresh units' time."""
    recorded = sum(s.seconds for s in outcome.stages)
    spent = outcome.metrics.get("compile_seconds_spent")
    if outcome.cache_hit:
        spent = 0.0
    elif not isinstance(spent, (int, float)) or isinstance(spent, bool):
        spent = recorded
    return round(recorded, 4), round(spent, 4)


def _tiled_record(cfg, plan: dict, run_dir: Path) -> dict:
    """The trial record of a tiled plan: the whole model's sizes, the stitched parity, the
    plan without its units' compile outcomes (those are in the outcome)."""
    from .model.convtasnet import build_model, dims_for
    from .model.units import count_params

    m = cfg.model
    d = dims_for(m.kernel_size, m.stride, m.time_len)
    return {
        "unit": {"name": "full", "description": f"tiled plan ({plan['mode']}): "
                 f"{plan['n_units']} distinct units, {plan['n_instances']} instances",
                 "layers": "see plan.txt",
                 "inputs": [{"name": "input", "shape_nchw": [1, 1, 1, m.time_len]}],
                 "outputs": ["output"], "output_shape_nchw": [1, m.n_src, 1, m.time_len],
                 "latent_width": d.latent_width},
        "params": count_params(build_model(m)),
        "macs": plan["host_share"]["per_second_of_audio"].get("untiled_macs"),
        "export": {"onnx_path": str(run_dir / "units"),
                   "parity_max_abs": plan["parity_max_abs"],
                   "parity_min_si_snr_db": plan["parity_min_si_snr_db"],
                   "parity_executor": plan["parity_executor"]},
        "onnx_name": "units",
        "tiling": {k: v for k, v in plan.items() if k not in ("units", "deploy")}
                  | {"units": [{k: v for k, v in u.items() if k != "compile"}
                               for u in plan["units"]]},
        "deploy": plan["deploy"],
    }


def _check_calibration(cfg, backend, unit) -> dict:
    """The calibration shapes this unit takes; a user's file is checked here for every backend,
    so a mismatch stops before any compile (the real compiler loads it again in its child)."""
    from .compile.calibration import load_calibration, nhwc_shape

    cal = cfg.compiler.calibration
    if cal.source != "synthetic" and backend.name != "hailo_dfc":
        arrays = load_calibration(cal, unit.inputs, unit.name in WAVEFORM_UNITS)
        shapes = {name: list(a.shape) for name, a in arrays.items()}
    else:
        shapes = {name: list(nhwc_shape(shape, cal.count)) for name, shape in unit.inputs}
    return {"source": cal.source, "policy": cal.input_length_policy, "nhwc": shapes}


def _net_name(run_tag: str) -> str:
    """The DFC network name: letters, digits and underscores."""
    return "".join(c if c.isalnum() else "_" for c in run_tag)[:64] or "net"


def summary_row(cfg, result: TrialResult, run_dir: Path) -> dict:
    """The trial's row of the summary TSV (report/tsv.py's columns)."""
    unit = result.unit
    outcome = result.compile
    failure = outcome.failure
    m = outcome.metrics
    recorded, spent = compile_seconds(outcome)
    return {
        "run_tag": cfg.run_tag, "unit": unit["name"], "unit_op": unit.get("op"),
        **result.knobs,
        "tiling": cfg.tiling.mode, "tile_width": cfg.tiling.tile_width,
        "channel_block": cfg.tiling.channel_block,
        "in_chan": unit["inputs"][0]["shape_nchw"][1],
        "out_chan": unit["output_shape_nchw"][1],
        "latent_width": unit["latent_width"],
        "params": result.params, "macs": result.macs,
        "backend": outcome.backend, "evidence": outcome.evidence, "hw_arch": cfg.hw.arch,
        "verdict": outcome.verdict, "har_success": outcome.har_success,
        "hef_success": outcome.hef_success,
        "exception_type": failure.exception_type if failure else None,
        "failure_family": failure.family if failure else None,
        "failure_head": failure.head if failure else None,
        "first_failing_layer": failure.layer if failure else None,
        "first_failing_layer_family": failure.layer_family if failure else None,
        "est_contexts": m.get("est_contexts"), "est_fps": m.get("est_fps"),
        **_bracket_columns(outcome.bracket if outcome.verdict == "uncertain" else None),
        **{k: result.deploy.get(k) for k in ("n_hefs", "configure_waves_per_audio_s",
                                                "switches_per_audio_s", "est_device_rtf")},
        "cache_hit": outcome.cache_hit,
        "compile_seconds": recorded, "compile_seconds_spent": spent,
        "parity_max_abs": result.export.get("parity_max_abs"), "status": result.status,
        "seconds": round(result.seconds, 3), "onnx_path": result.export["onnx_path"],
        "har_path": _artifact(outcome, ".har"), "hef_path": _artifact(outcome, ".hef"),
        "result_path": str(run_dir / "result.json"), "run_dir": str(run_dir),
    }


def _artifact(outcome, suffix: str) -> str | None:
    found = [s.artifact for s in outcome.stages if s.artifact and s.artifact.endswith(suffix)]
    return found[-1] if found else None


def sweep_return(result: TrialResult) -> dict:
    """What a job hands back to a Hydra sweeper (small and picklable)."""
    return result.job_result().as_dict()


def _bracket_columns(bracket: dict | None) -> dict:
    """The summary's columns for an uncertain estimate (empty for any other verdict)."""
    b = bracket or {}
    return {"est_point_verdict": b.get("point_verdict"), "est_bracket_family": b.get("family"),
            "est_bracket_layer": b.get("layer"), "est_bracket_row_bytes": b.get("value"),
            "est_bracket_pass_max": b.get("pass_max"), "est_bracket_fail_min": b.get("fail_min")}


def one_line(result: TrialResult) -> str:
    """The line a person reads in the log for each trial."""
    s = result.summary
    parts = [f"[{s['run_tag']}] unit={s['unit']}", f"params={s['params']:,}",
             f"macs={s['macs']:,}"]
    if s.get("parity_max_abs") is not None:
        parts.append(f"onnx_parity={s['parity_max_abs']:.2g}")
    verdict = s["verdict"].upper()
    if s["verdict"] == "uncertain":
        verdict = (f"UNCERTAIN (evidence={s['evidence']}: {s.get('est_bracket_layer')} buffers "
                   f"{s.get('est_bracket_row_bytes')} B, between the "
                   f"{s.get('est_bracket_pass_max')} B that passed and the "
                   f"{s.get('est_bracket_fail_min')} B that failed in real compiles of family "
                   f"{s.get('est_bracket_family')}; not compiled)")
    elif s["evidence"] == "estimate":
        verdict = f"{verdict} (evidence=estimate: predicted, not compiled)"
    else:
        verdict = f"{verdict} (evidence={s['evidence']})"
    parts.append(verdict)
    if s.get("failure_family"):
        parts.append(f"family={s['failure_family']}")
    if s.get("first_failing_layer"):
        parts.append(f"first_failing_layer={s['first_failing_layer']}")
    if s.get("cache_hit"):
        parts.append("cache_hit")
    parts.append(f"-> {s['run_dir']}")
    return " ".join(parts)
