"""Push trials that are recorded locally but missing from MLflow (the server was down, the
database locked, ...): ``python -m tasnet_sweep.commands.sync <dir> [--uri URI] [--experiment
NAME]``.

``<dir>`` is a sweep dir or a single run dir.  Each trial is recognised in MLflow by the
``tasnet.trial_id`` tag (a digest of its run dir) together with ``tasnet.complete``: complete
trials are left alone, runs cut short are deleted and logged again, so running sync twice adds
nothing the second time.  A sweep's parent run is reused (from ``.mlflow_sweep.json`` or its
``tasnet.sweep_id`` tag) or created, gets the sweep-level files, and is marked finished.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..atomic import write_json
from ..results import TrialResult, read_result
from ..tracking import mlflow_store as store
from ..tracking.flatten import SWEEP_ID_TAG, TRIAL_ID_TAG, redact

log = logging.getLogger(__name__)
PROG = "tasnet_sweep.commands.sync"
EXIT_USAGE = 2
EXIT_TRACKING = 1


def trial_dirs(root: Path) -> list[Path]:
    """Run dirs under ``root`` (those with a result.json), in job order."""
    found = [p.parent for p in root.rglob("result.json")
             if not any(part.startswith(".") for part in p.relative_to(root).parts)]
    return sorted(found, key=lambda p: (len(p.parts), p.name.split("_", 1)[0].zfill(8), str(p)))


def _load(run_dir: Path) -> tuple[TrialResult | None, dict]:
    """The run's trial record (None for a result.json cut off or of another shape) and its
    resolved config."""
    from omegaconf import OmegaConf

    result = read_result(run_dir / "result.json")
    config_file = run_dir / "config_resolved.yaml"
    plain = OmegaConf.to_container(OmegaConf.load(config_file)) if config_file.is_file() else {}
    return result, plain


def sync(root: str | Path, uri: str | None = None, experiment: str | None = None) -> dict:
    """Bring MLflow level with the trials under ``root``; returns counts and ids."""
    root = Path(root).resolve()
    link = store.read_link(root)
    uri = store.resolve_uri(uri or _linked_uri(link))
    name = experiment or (link or {}).get("experiment") or store.DEFAULT_EXPERIMENT
    client = store.client_for(uri)
    experiment_id = store.ensure_experiment(client, name, uri)
    is_sweep = link is not None or not (root / "result.json").is_file()

    parent = None
    if is_sweep:
        parent = _existing_parent(client, experiment_id, link, store.digest(root), SWEEP_ID_TAG)
        if parent is None:
            parent = store.create_sweep_run(client, experiment_id, root, {"synced": "true"})
    added, present = _push_trials(client, experiment_id, trial_dirs(root), parent)
    if parent is not None:
        store.finish_sweep_run(client, parent, root)
        if link is None or store.resolve_uri(link.get("uri")) == redact(uri):
            write_json(root / store.LINK_NAME, {
                "uri": redact(uri), "experiment": name, "experiment_id": experiment_id,
                "parent_run_id": parent, "sweep_id": store.digest(root)})
    marker = root / store.FAILED_MARKER
    if marker.exists():
        marker.unlink()
    return {"uri": uri, "experiment": name, "parent_run_id": parent, "added": added,
            "present": present}


def _linked_uri(link: dict | None) -> str | None:
    """The store a sweep's link names, unless the link kept it redacted (the credentials then
    come from --uri or the environment)."""
    linked = (link or {}).get("uri")
    if linked and redact(linked) != linked or "***@" in str(linked):
        return None
    return linked


def _push_trials(client, experiment_id: str, runs: list[Path],
                 parent: str | None) -> tuple[list[str], int]:
    """Log the runs MLflow lacks complete (a run cut short is deleted and logged again);
    returns (run ids added, how many were there already)."""
    logged = store.runs_with_tag(client, experiment_id, TRIAL_ID_TAG)
    added, present = [], 0
    for run_dir in runs:
        if store.settle_earlier(client, logged.get(store.digest(run_dir), [])):
            present += 1
            continue
        result, plain = _load(run_dir)
        if result is None:
            log.warning("%s: result.json is cut off or not a trial's record; not logged",
                        run_dir)
            continue
        added.append(store.log_trial_run(client, experiment_id, result, run_dir, plain, parent))
    return added, present


def _existing_parent(client, experiment_id: str, link: dict | None, sweep_id: str,
                     tag: str) -> str | None:
    """The sweep's parent run in this store: the linked one, else one with its sweep id."""
    parent_id = (link or {}).get("parent_run_id")
    if parent_id:
        try:
            run = client.get_run(parent_id)
            if run.info.experiment_id == experiment_id and run.info.lifecycle_stage == "active":
                return parent_id
        except Exception:  # not in this store (another URI, or it was never created)
            pass
    runs = [r for r in client.search_runs([experiment_id], f"tags.`{tag}` = '{sweep_id}'")
            if r.info.lifecycle_stage == "active"]
    return runs[0].info.run_id if runs else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tasnet_sweep.commands.sync",
        description="Push trials recorded under a sweep (or run) dir that MLflow is missing.")
    parser.add_argument("dir", help="a sweep dir (outputs/multirun/<date>/<time>) or a run dir")
    parser.add_argument("--uri", help="tracking URI (default: the sweep's own, else "
                        "$MLFLOW_TRACKING_URI, else sqlite:///outputs/mlflow.db)")
    parser.add_argument("--experiment", help="experiment name (default: the sweep's own)")
    parser.add_argument("--mark-failure", action="store_true",
                        help="on failure also leave tracking_failed.txt in dir (what a trial "
                             "that hands its logging to sync relies on)")
    args = parser.parse_args(argv)
    root = Path(args.dir)
    if not root.is_dir():
        print(f"{PROG}: {args.dir!r} is not a directory: expected a sweep or run dir",
              file=sys.stderr)
        return EXIT_USAGE
    if not trial_dirs(root.resolve()):
        print(f"{PROG}: {args.dir!r} holds no result.json: expected a sweep or run dir written "
              "by python -m tasnet_sweep", file=sys.stderr)
        return EXIT_USAGE
    try:
        done = sync(root, args.uri, args.experiment)
    except Exception as exc:
        if args.mark_failure:
            store.report_failure_once(root, exc, store.resolve_uri(args.uri))
        first = redact((str(exc).strip().splitlines() or [""])[0][:300])
        print(f"tasnet_sweep.commands.sync: MLflow is not reachable or refused the trials "
              f"({type(exc).__name__}: {first}); nothing was lost, try again later",
              file=sys.stderr)
        return EXIT_TRACKING
    print(f"synced {root}: {len(done['added'])} trial(s) added, {done['present']} already "
          f"in MLflow (experiment {done['experiment']!r} at {redact(done['uri'])}"
          + (f", sweep run {done['parent_run_id']})" if done["parent_run_id"] else ")"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
