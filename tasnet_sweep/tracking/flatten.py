"""What one trial looks like in a tracking store: params, metrics and tags, as plain dicts.

Nothing here imports MLflow; the limits below are MLflow's (mlflow/utils/validation.py) and
apply to any store, so a trial that logs here also logs against an older server.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

from ..report.tsv import KNOB_COLUMNS
from ..results import TrialResult

#: MLflow's limits: entities per log_batch call and value lengths
MAX_PARAMS_PER_BATCH = 100
MAX_TAGS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_KEY = 250

#: tag names this package sets (the plain ones are the columns to show in the MLflow UI)
TRIAL_ID_TAG = "tasnet.trial_id"  # digest of the run dir: how sync recognises a logged trial
COMPLETE_TAG = "tasnet.complete"  # set last: a run without it was cut short and is redone
SWEEP_ID_TAG = "tasnet.sweep_id"  # digest of the sweep dir, on the parent run
KIND_TAG = "tasnet.kind"  # sweep | trial
STUDY_TAG = "tasnet.study"  # on a frontier search's parent: <storage>::<study name>
TRIAL_KEY_TAG = "tasnet.trial_key"  # digest of a sweep job's overrides: one run per job
HOST_TAG, PID_TAG = "tasnet.host", "tasnet.pid"  # the process that runs a sweep's parent
#: the experiment tag MLflow 3's UI reads to open the model-training view rather than GenAI
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
_BAD_KEY_CHARS = re.compile(r"[^A-Za-z0-9_\-. /]")
#: user:password in a URL (a tracking URI like http://alice:s3cr3t@host:5000)
_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")


def redact(text: str) -> str:
    """``text`` with the user and password of every URL in it replaced by ``***``."""
    return _CREDENTIALS.sub(lambda m: m.group("scheme") + "***@", str(text))


def clean_key(key: str) -> str:
    """A key MLflow accepts: letters, digits, ``_ - . /`` and spaces, at most 250 characters."""
    return _BAD_KEY_CHARS.sub("_", str(key))[:MAX_KEY]


def _as_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str, separators=(",", ":"))
    return str(value)


def _walk(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, f"{prefix}.{k}" if prefix else str(k))
    else:  # lists stay one value: a param is a setting, not a table
        yield prefix, node


def flatten_config(plain: dict) -> dict[str, str]:
    """The composed config as ``{"model.bn": "128", ...}``: model knobs first, then the rest
    in config order; values cut to MLflow's param length, credentials in URLs redacted."""
    flat = dict(_walk(plain, ""))
    knobs = [f"model.{k}" for k in KNOB_COLUMNS if f"model.{k}" in flat]
    ordered = knobs + [k for k in flat if k not in knobs]
    return {clean_key(k): redact(_as_text(flat[k]))[:MAX_PARAM_VALUE] for k in ordered}


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _find_si_snr(node: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """Any SI-SNR figure in a result (the runtime/tiling checks add them where they run)."""
    if isinstance(node, dict):
        for k, v in node.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if "si_snr" in str(k).lower() and _number(v) is not None:
                yield key, _number(v)
            else:
                yield from _find_si_snr(v, key)


#: deployment figures logged per trial (see tasnet_sweep/tiling/deploy.py)
DEPLOY_METRICS = ("n_hefs", "configure_waves_per_audio_s", "configures_per_audio_s",
                  "switches_per_audio_s", "est_device_rtf")


def trial_metrics(result: TrialResult) -> dict[str, float]:
    """Numbers worth comparing across trials: size, cost, stage times, estimate figures
    (contexts, FPS, utilization per resource), ONNX parity and SI-SNR where present."""
    out: dict[str, float] = {}

    def put(key, value):
        number = _number(value)
        if number is not None:
            out[clean_key(key)] = number

    put("params", result.params)
    put("macs", result.macs)
    put("trial_seconds", result.seconds)
    for metric, key in (("export_seconds", "seconds"), ("onnx_nodes", "nodes"),
                        ("parity_max_abs", "parity_max_abs"),
                        ("parity_seconds", "parity_seconds")):
        put(metric, result.export.get(key))
    outcome = result.compile
    for stage in outcome.stages:
        if stage.ok is not None:
            put(f"stage_{stage.name}_seconds", stage.seconds)
            put(f"stage_{stage.name}_ok", stage.ok)
    for key, value in outcome.metrics.items():
        put(key, value)  # est_contexts, est_fps, util_<resource>, units_<resource>, ...
    put("hef_success", outcome.hef_success)
    put("har_success", outcome.har_success)
    verdict = result.summary.get("verdict", outcome.verdict)
    if verdict in ("pass", "fail"):  # 0/1, so the UI's charts can colour pass against fail
        out["hef_pass"] = 1.0 if verdict == "pass" else 0.0
    if verdict == "uncertain":  # no hef_pass: neither; the bracket it lies in, in bytes
        bracket = outcome.bracket or {}
        for metric, key in BRACKET_METRICS:
            put(metric, bracket.get(key))
    for key in DEPLOY_METRICS:  # what running the trial's plan on a device takes
        put(key, result.deploy.get(key))
    for key in ("compile_seconds", "compile_seconds_spent"):  # recorded; spent now (hit: 0)
        put(key, result.summary.get(key))
    for key, value in _find_si_snr(result.as_dict()):
        put(key, value)
    return out


#: an uncertain estimate's bracket, logged as metrics: (metric, key of CompileOutcome.bracket)
BRACKET_METRICS = (("est_bracket_row_bytes", "value"), ("est_bracket_pass_max", "pass_max"),
                   ("est_bracket_fail_min", "fail_min"))


def _bracket_tags(outcome) -> dict:
    """An uncertain estimate's tags: the bracket family, the layer inside it, the point guess."""
    if outcome.verdict != "uncertain":
        return {}
    b = outcome.bracket or {}
    return {"est_bracket_family": b.get("family"), "est_bracket_layer": b.get("layer"),
            "est_point_verdict": b.get("point_verdict")}


def standard_tags() -> dict[str, str]:
    """MLflow's own source tags, which its fluent API sets and ``MlflowClient`` does not."""
    import getpass
    import sys

    try:
        user = getpass.getuser()
    except Exception:  # no user name in this environment
        user = ""
    command = "tasnet_sweep" if not sys.argv or not sys.argv[0] else \
        "python -m " + (__package__ or "tasnet_sweep").split(".")[0]
    tags = {"mlflow.source.name": command, "mlflow.source.type": "LOCAL", "mlflow.user": user}
    return {k: v for k, v in tags.items() if v}


def trial_tags(result: TrialResult, run_dir: str, git_commit: str | None) -> dict[str, str]:
    """Labels to filter and group by; every value a string within MLflow's tag length.

    ``git_commit`` goes on runs that stand alone; a sweep's children leave it to the parent."""
    summary = result.summary
    outcome = result.compile
    failure = outcome.failure
    tags = {
        "run_tag": summary.get("run_tag", result.run_tag),
        "unit": summary.get("unit", result.unit.get("name")),
        "backend": summary.get("backend", outcome.backend),
        "evidence": summary.get("evidence", outcome.evidence),
        "verdict": summary.get("verdict", outcome.verdict),
        "status": summary.get("status", result.status),
        "failure_family": summary.get("failure_family", failure and failure.family),
        "failure_head": summary.get("failure_head", failure and failure.head),
        "first_failing_layer": summary.get("first_failing_layer", failure and failure.layer),
        **_bracket_tags(outcome),
        "hw_arch": summary.get("hw_arch"),
        "tiling": summary.get("tiling"),
        "compiler_version": outcome.tool_version,
        "cache_hit": summary.get("cache_hit", outcome.cache_hit),
        "run_dir": run_dir,
        "mlflow.runName": summary.get("run_tag", result.run_tag),
        KIND_TAG: "trial",
        **standard_tags(),
    }
    if git_commit:
        tags["mlflow.source.git.commit"] = git_commit
    return {k: _as_text(v)[:MAX_TAG_VALUE] for k, v in tags.items()
            if v is not None and v != ""}


def chunks(items: dict, size: int) -> Iterator[list[tuple[str, Any]]]:
    """``items`` in batches of at most ``size`` (MLflow's per-call limits)."""
    pairs = list(items.items())
    for i in range(0, len(pairs), size):
        yield pairs[i:i + size]
