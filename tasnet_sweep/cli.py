"""The command line: a preflight check of every job's config, then the Hydra app.

Hydra creates a run directory before it calls the task function, so a config mistake caught
there would leave half a run behind.  ``preflight`` checks each job's config first (every point
of a basic-sweeper grid: one compose per set of group choices, each job's values applied to a
copy, ``job_configs.py``), and stops with exit code 2 and one line per problem before any
directory exists.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import NoReturn

from .config_path import config_search_path
from .errors import DISK_ERRORS, EXIT_CONFIG, EXIT_DISK, report_config_errors  # noqa: F401
from .help import help_text, wants_own_help
from .job_configs import JobConfigs, mark_checked
from .processes import end_pool_workers, leave
from .resources import CONF_DIR, group_options  # noqa: F401 (CONF_DIR: re-export)

#: a run folder holds an ONNX file (20 MB for the paper's model), HAR/HEF and reports
MIN_FREE_BYTES = 64 << 20
#: hydra flags that only print information; they need no preflight
_INFO_FLAGS = ("help", "hydra_help", "info", "shell_completion", "cfg", "resolve")


def _fail(problems: list[str]) -> int:
    return report_config_errors(problems)


def describe_yaml_error(exc: BaseException) -> str:
    """A config file that is not valid YAML, as one line: the file, where, and what is wrong."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).strip().splitlines()[0]
    where = (f"{mark.name} line {mark.line + 1}, column {mark.column + 1}" if mark
             else "a config file")
    return f"{where} is not valid YAML: {problem}; expected a YAML mapping (fix the file)"


def describe_hydra_error(exc: BaseException) -> str:
    """Hydra/OmegaConf errors as one line: the key, the bad value and what is accepted.

    The exception's chain (causes and contexts) is read for the most telling error first: a
    YAML syntax error, a missing config option, an unknown key; else its first two lines."""
    chain = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    for describe in (_as_yaml_error, _as_override_syntax, _as_missing_option, _as_unknown_key,
                     _as_sweep_without_multirun):
        for e in chain:
            line = describe(e)
            if line is not None:
                return line
    lines = []
    for e in chain:
        text = str(e).strip().splitlines()
        first = text[0].strip() if text else type(e).__name__
        first = first.removeprefix("Error merging override ")
        if "$VALUE" in first or first in lines:
            continue
        lines.append(first)
    return ": ".join(lines[:2])


def _as_yaml_error(e: BaseException) -> str | None:
    from yaml import YAMLError

    return describe_yaml_error(e) if isinstance(e, YAMLError) else None


def _as_override_syntax(e: BaseException) -> str | None:
    from hydra.errors import OverrideParseException

    if not isinstance(e, OverrideParseException):
        return None
    why = str(e).strip().splitlines()[0]
    return (f"{e.override!r} is not a valid override ({why}): expected key=value; quote a value "
            "holding '=', brackets or spaces, e.g. 'key=\"a=b\"'")


def _as_missing_option(e: BaseException) -> str | None:
    from hydra.errors import MissingConfigException

    if not (isinstance(e, MissingConfigException) and e.missing_cfg_file):
        return None
    group, _, name = e.missing_cfg_file.rpartition("/")
    options = ", ".join(e.options or [])
    where = f"{group}={name}" if group else name
    return f"{where} is not an option" + (f": expected one of {options}" if options else "")


def _as_unknown_key(e: BaseException) -> str | None:
    obj, key = getattr(e, "object_type", None), getattr(e, "key", None)
    if key is None or not dataclasses.is_dataclass(obj) or "not in" not in str(e):
        return None
    fields = ", ".join(f.name for f in dataclasses.fields(obj))
    return f"{getattr(e, 'full_key', None) or key} is not a known key: expected one of {fields}"


def _as_sweep_without_multirun(e: BaseException) -> str | None:
    """Hydra's "Ambiguous value for argument 'k=a,b'" / "Sweep parameters 'k=...' requires
    --multirun", from a single run's compose."""
    import re

    found = re.match(r"(?:Ambiguous value for argument|Sweep parameters) '([^']+)'", str(e))
    if found is None:
        return None
    return (f"{found.group(1)} sweeps over values: expected -m to run one job per value (a "
            "list value is written [a,b]; a string holding a comma is quoted)")


def job_override_lists(overrides: list[str], multirun: bool) -> list[list[str]]:
    """The overrides of every job a basic sweep would launch (one job without -m)."""
    if not multirun:  # the compose parses them (and reports a malformed one)
        return [overrides]
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    custom_sweeper = any(o.get_key_element() == "hydra/sweeper" and o.value() != "basic"
                         for o in parsed)
    if custom_sweeper:
        # the search space belongs to that sweeper; check the base config it starts from
        return [[o.input_line for o in parsed if not o.is_sweep_override()]]
    return BasicSweeper.split_arguments(parsed, None)[0]


def calibration_problems(cfg) -> list[str]:
    """A user's calibration file checked against the unit's input shapes before any run
    directory exists (only when one is given: this builds the unit, so it imports torch)."""
    cal = cfg.compiler.calibration
    if cal.source == "synthetic" or cfg.tiling.mode != "none":
        return []
    from .compile.calibration import load_calibration
    from .config import ConfigError
    from .model.catalog import WAVEFORM_UNITS
    from .model.units import build_unit

    unit = build_unit(cfg.model, cfg.unit)
    try:
        load_calibration(cal, unit.inputs, unit.name in WAVEFORM_UNITS)
    except ConfigError as exc:
        return list(exc.problems)
    return []


def _search_keys_without_search(overrides: list[str]) -> str | None:
    """``search.<key>=...`` needs a search chosen first (Hydra would fail with an assertion)."""
    keys = [o.split("=", 1)[0].lstrip("+~") for o in overrides]
    if not any(k.startswith("search.") for k in keys) or "search" in keys:
        return None
    first = next(k for k in keys if k.startswith("search."))
    return (f"{first} needs a search to set it in: add search=<name> (one of "
            f"{', '.join(group_options('search'))}) before it")


def frontier_without_search(overrides: list[str], cfg) -> list[str]:
    """Caught here, before Hydra's callbacks create a sweep dir and an MLflow parent run."""
    if "hydra/sweeper=frontier" not in overrides or cfg.get("search") is not None:
        return []
    return [f"hydra/sweeper=frontier needs search=<name>: expected one of "
            f"{', '.join(group_options('search'))}"]


def sweep_job_problems(configs: JobConfigs, jobs: list[list[str]], label: str) -> list[str]:
    """Every problem in the jobs a sweeper is about to launch (``configs``: the sweep's
    ``JobConfigs.for_sweep``, composed as its launcher will compose them)."""
    from .checks import validate

    found: list[str] = []
    for job in jobs:
        for p in validate(configs(job)):
            line = f"{p} ({label}: {' '.join(job)})"
            if line not in found:
                found.append(line)
    return found


def preflight(argv: list[str], keep: list | None = None) -> list[str]:
    """Every problem in every job's config (empty list when all jobs are good to run).

    A single run's config is composed whole, as ``Hydra.run`` will compose it, and appended to
    ``keep`` (a ``compose_once.Kept``) for Hydra to reuse."""
    from hydra import compose
    from hydra._internal.utils import get_args_parser
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException
    from yaml import YAMLError

    from .checks import validate
    from .config import register_configs

    args = get_args_parser().parse_args(argv)
    if any(getattr(args, flag, None) for flag in _INFO_FLAGS):
        return []
    register_configs()
    try:
        jobs = job_override_lists(args.overrides, args.multirun)
    except (HydraException, OmegaConfBaseException) as exc:
        return [describe_hydra_error(exc)]
    stray = _search_keys_without_search(args.overrides)
    if stray:
        return [stray]
    by_problem: dict[str, list[list[str]]] = {}
    if args.config_dir is not None and not Path(args.config_dir).is_dir():
        return [f"--config-dir {args.config_dir!r} is not a folder: expected a folder of config "
                "groups, e.g. one holding hw/my_profile.yaml"]
    with config_search_path(args.config_path, args.config_dir):
        config_name = args.config_name or "config"
        configs = JobConfigs(GlobalHydra.instance().config_loader().repository,
                             lambda overrides: compose(config_name=config_name,
                                                       overrides=overrides))
        single = not args.multirun and not _sets_mode(args.overrides)
        for job in jobs:
            try:
                cfg = _compose_single(config_name, job, keep) if single else configs(job)
            except (HydraException, OmegaConfBaseException, YAMLError) as exc:
                found = [describe_hydra_error(exc)]
            else:
                found = (validate(cfg) or calibration_problems(cfg)
                         or frontier_without_search(args.overrides, cfg))
            for p in found:
                by_problem.setdefault(p, []).append(job)
    if not by_problem:
        mark_checked(jobs)  # the grid sweeper need not compose them again
    if len(jobs) == 1:
        return list(by_problem)
    return [f"{p} (in {len(bad)} of {len(jobs)} jobs, first: {' '.join(bad[0])})"
            for p, bad in by_problem.items()]


def _sets_mode(overrides: list[str]) -> bool:
    return any(o.lstrip("+~").startswith("hydra.mode") for o in overrides)


def _compose_single(config_name: str, overrides: list[str], keep: list | None):
    """A single run's whole config, kept for Hydra (``compose_once``)."""
    from .compose_once import compose_run

    kept = compose_run(config_name, overrides)
    if keep is not None:
        keep.append(kept)
    return kept.cfg


#: config groups that describe a sweep, not one trial
SWEEP_GROUPS = ("search", "experiment")


def sweep_without_multirun(argv: list[str]) -> list[str]:
    """``search=...`` or ``+experiment=...`` without ``-m`` would run one default trial; and
    ``-m`` with ``--cfg``/``--info``, which Hydra refuses with a traceback."""
    printing = set(argv) & {"--cfg", "-c", "--info", "-i"}
    if printing and set(argv) & {"-m", "--multirun"}:
        return [f"-m/--multirun cannot be combined with {sorted(printing)[0]}: drop -m to print "
                "the config of one job, with one value per swept key"]
    if set(argv) & {"-m", "--multirun", "--help", "-h", "--hydra-help"} or printing:
        return []  # a sweep, or a command that only prints
    for arg in argv:
        key, _, value = arg.partition("=")
        if key.lstrip("+~") in SWEEP_GROUPS and value not in ("", "null"):
            return [f"{arg} describes a sweep: add -m (python -m tasnet_sweep -m {arg} ...); "
                    "without it one default trial would run instead"]
    return []


def output_problems(argv: list[str]) -> list[str]:
    """The folder the runs go to (hydra.run.dir, or hydra.sweep.dir with -m, up to its first
    interpolation) must be writable and have room, or Hydra fails with a traceback."""
    import os

    multirun = bool(set(argv) & {"-m", "--multirun"})
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    given = [a.split("=", 1)[1] for a in argv if a.startswith(key + "=")]
    setting = given[-1] if given else ("outputs/multirun" if multirun else "outputs/runs")
    folder = Path(setting.split("${", 1)[0] or ".")
    target = folder if folder.is_absolute() else Path.cwd() / folder
    while not target.exists() and target != target.parent:
        target = target.parent
    if not target.is_dir():
        return [f"{key}={setting!r} is invalid: {target} is a file: expected a folder"]
    if not os.access(target, os.W_OK | os.X_OK):
        return [f"{key}={setting!r} is invalid: {target} is not writable (a read-only disk?): "
                "expected a folder this user can write"]
    free = os.statvfs(target)
    room = free.f_bavail * free.f_frsize
    if room < MIN_FREE_BYTES:
        return [f"{key}={setting!r} is invalid: {target} has {room >> 20} MiB free: expected "
                f"at least {MIN_FREE_BYTES >> 20} MiB for a run's files"]
    return []


def _reusing(kept: list):
    import contextlib

    if not kept:
        return contextlib.nullcontext()
    from .compose_once import hydra_reuses

    return hydra_reuses(kept[0])


def entry() -> NoReturn:
    """``python -m tasnet_sweep`` and the ``tasnet-sweep`` script: ``main``, then the process
    ends without the interpreter's teardown (``processes.leave``), which after a sweep or a
    fresh trial takes about a second of collecting what MLflow or torch left in memory.
    ``main`` stays an ordinary function for callers in Python."""
    try:
        code = main()
    except SystemExit as exc:  # Hydra ends with sys.exit on a failed job
        code = exc.code
    leave(code)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["doctor"]:  # tasnet-sweep doctor: python -m tasnet_sweep.commands.doctor
        from .commands.doctor import main as doctor

        return doctor(argv[1:])
    if wants_own_help(argv):  # from the config folder: Hydra's app help takes over a second
        print(help_text(argv), end="")
        return 0
    kept: list = []  # a single run's composed config, for Hydra to reuse
    problems = sweep_without_multirun(argv) or preflight(argv, kept)
    if not problems and not set(argv) & {"--help", "-h", "--cfg", "-c", "--info", "-i",
                                         "--hydra-help", "--shell-completion", "-sc"}:
        problems = output_problems(argv)
    if problems:
        return _fail(problems)
    from .app import hydra_app

    sys.argv = [sys.argv[0], *argv]
    try:
        with _reusing(kept):
            hydra_app()
    finally:  # a launcher's worker processes end with the sweep, not minutes after it
        end_pool_workers()
    return 0
