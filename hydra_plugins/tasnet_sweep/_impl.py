"""The frontier sweeper's work: read ``search``, run the search loop through the configured
Hydra launcher, write optimization_results.yaml and frontier.tsv/.md/.png in the sweep dir.

Sweep overrides on the command line (``model.bn=32,64``, ``model.hidden=range(64,257,64)``)
become knobs too, in the order given (ranges ascending); plain overrides go to every job.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

from tasnet_sweep.errors import report_config_errors

log = logging.getLogger(__name__)


def _fail(problems: list[str]):
    sys.exit(report_config_errors(problems))


def _override_text(key: str, value) -> str:
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"{key}={value}"


class FrontierSweeperImpl:
    def __init__(self, job_overrides: list[str]):
        self.job_overrides = job_overrides
        self.hydra_context = self.config = self.launcher = self.configs = None
        self.job_idx = 0

    def setup(self, *, hydra_context, task_function, config) -> None:
        from hydra.core.plugins import Plugins

        from tasnet_sweep.job_configs import JobConfigs

        self.hydra_context, self.config = hydra_context, config
        # the jobs' configs for checking: one compose shared by every job (job_configs.py)
        self.configs = JobConfigs.for_sweep(hydra_context.config_loader, config)
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    # -- search space -------------------------------------------------------------------
    def _search_space(self, arguments: list[str]):
        from hydra.core.override_parser.overrides_parser import OverridesParser

        search = self.config.get("search")
        if search is None:
            from tasnet_sweep.resources import group_options

            options = group_options("search")
            _fail([f"hydra/sweeper=frontier needs search=<name>: expected one of "
                   f"{', '.join(options) or '(none in conf/search)'}"])
        knobs = dict(OmegaConf.to_container(search.knobs, resolve=True) or {})
        passthrough = [*self.job_overrides, *list(search.fixed or [])]
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        for o in parser.parse_overrides(arguments):
            if o.is_sweep_override():
                values = list(o.sweep_iterator())
                if o.is_range_sweep():
                    values = sorted(values)
                knobs[o.get_key_element()] = values
            else:
                passthrough.append(o.input_line)
        return search, knobs, passthrough

    def _jobs(self, lattice, points, passthrough):
        return [[*passthrough, *(_override_text(k, v) for k, v in lattice.values(p).items())]
                for p in points]

    def _check(self, jobs: list[list[str]]) -> None:
        from tasnet_sweep.cli import sweep_job_problems

        problems = sweep_job_problems(self.configs, jobs, "job")
        if problems:
            _fail(problems)

    # -- the sweep ----------------------------------------------------------------------
    def sweep(self, arguments: list[str]):
        from tasnet_sweep.atomic import write_text
        from tasnet_sweep.search import driver
        from tasnet_sweep.search.frontier import summarize, write_reports
        from tasnet_sweep.search.lattice import Lattice, SearchSpaceError
        from tasnet_sweep.search.study import FrontierStudy, JournalDamaged

        started = time.monotonic()  # the wall clock the report gives
        search, knobs, passthrough = self._search_space(arguments)
        try:
            lattice = Lattice.from_spec(knobs)
        except SearchSpaceError as exc:
            _fail([str(exc)])
        # sampler, batch_size and max_trials: checked with the rest of the config (checks.py)
        bottom = tuple(0 for _ in lattice.shape)
        top = tuple(n - 1 for n in lattice.shape)
        self._check(self._jobs(lattice, [bottom, top], passthrough))

        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        study_name = search.study_name or search.name
        prior = None
        if search.get("prior_study"):
            try:
                prior = driver.prior_from_study(lattice, search.prior_study,
                                                search.get("prior_storage"))
            except ValueError as exc:
                _fail([str(exc)])
        objective_name = search.get("objective")
        objective = None
        if objective_name is not None:
            objective = self._sizes(lattice, passthrough, objective_name)
        try:
            study = FrontierStudy(lattice, study_name, search.storage, search.sampler,
                                  search.seed, search.objective)
        except JournalDamaged as exc:
            _fail([str(exc)])
        returns = []

        def launch(points):
            jobs = self._jobs(lattice, points, passthrough)
            self._check(jobs)
            results = self.launcher.launch(jobs, initial_job_idx=self.job_idx)
            self.job_idx += len(jobs)
            returns.append(results)
            out = []
            for r in results:
                try:
                    out.append(r.return_value)
                except Exception as exc:  # a crashed job: logged, not used as evidence
                    log.error("job %s failed: %s", r.overrides, exc)
                    out.append(None)
            return out

        if search.get("workers"):
            state = self._run_workers(sweep_dir, search, lattice, study, passthrough,
                                      prior, objective, returns)
        else:
            state = driver.run(lattice, study, launch, sampler=search.sampler,
                               batch_size=search.batch_size, max_trials=search.max_trials,
                               seed=search.seed, record_inferred=search.record_inferred,
                               prior=prior, objective=objective,
                               assume_running=search.get("assume_running", "auto"))
        best = None
        if objective is not None and state.done:
            best = driver.best_pass(state.knowledge.status, objective)
        frontier = summarize(lattice, state.knowledge, state.records, objective_name, best,
                             wall_clock_s=time.monotonic() - started, uncertain=state.uncertain)
        write_reports(frontier, sweep_dir, title=f"Frontier: {study_name}", png=search.plot)
        write_text(sweep_dir / "optimization_results.yaml", OmegaConf.to_yaml(
            self._results(frontier, state, study)))
        if best is not None:
            log.info("largest passing by %s, certified: %s (%s %s)", objective_name,
                     " ".join(_override_text(k, v) for k, v in lattice.values(best[0]).items()),
                     f"{best[1]:,}", objective_name)
        log.info("frontier %s: %d maximal passing, %d minimal failing; %d compiles this run, "
                 "%d before (study %s in %s)", "exact" if frontier.complete else "NOT exact",
                 len(frontier.maximal_passing), len(frontier.minimal_failing),
                 state.compiled_now, state.compiled_before, study_name, study.location)
        log.info("frontier files (frontier.md, frontier.tsv, frontier.png, "
                 "optimization_results.yaml) in %s", sweep_dir)
        return returns

    def _run_workers(self, sweep_dir, search, lattice, study, passthrough, prior, objective,
                     returns):
        """``search.workers=N``: N jobs through the launcher, each searching on its own
        (tasnet_sweep/search/worker.py); then the study's answers, as one run's state."""
        from tasnet_sweep.search import driver
        from tasnet_sweep.search.worker import write_spec

        def compiled() -> int:
            return driver.compiled_answers(study.load()[0], study.uncertain_points())

        before = compiled()
        knobs = {k.name: list(k.values) for k in lattice.knobs}
        write_spec(sweep_dir, knobs, passthrough, study.study_name, prior, objective, before)
        jobs = [[*passthrough, f"search.worker={i}", f"run_tag=search_worker{i}"]
                for i in range(search.workers)]
        log.info("starting %d search workers (study %s in %s)", len(jobs), study.study_name,
                 study.location)
        results = self.launcher.launch(jobs, initial_job_idx=self.job_idx)
        self.job_idx += len(jobs)
        returns.append(results)
        for r in results:
            try:
                log.info("search worker %s", r.return_value)
            except Exception as exc:  # a worker lost: the others carried on without it
                log.error("search worker %s failed: %s", r.overrides, exc)
        knowledge, records = study.load()
        state = driver.SearchRun(knowledge, records, compiled_before=before,
                                 compiled_now=compiled() - before,
                                 uncertain=sorted(study.uncertain_points()), objective=objective)
        if search.record_inferred:
            state.inferred_recorded = study.record_inferred(knowledge)
        return state

    def _sizes(self, lattice, passthrough, objective: str):
        """search.objective of every point (the first job's config with each point's knobs)."""
        from tasnet_sweep.search.sizes import SizeError, cached_lattice_sizes
        from tasnet_sweep.search.study import DEFAULT_ROOT

        first = self._jobs(lattice, [tuple(0 for _ in lattice.shape)], passthrough)[0]
        cfg = self.configs(first)
        try:
            return cached_lattice_sizes(lattice, cfg, objective, DEFAULT_ROOT)
        except SizeError as exc:
            _fail([str(exc)])

    def _results(self, frontier, state, study) -> dict:
        lattice = frontier.lattice
        best = max(frontier.maximal_passing, key=lattice.rank, default=None)
        best_value = lattice.rank(best) if best is not None else None
        if frontier.best is not None:  # search.objective: the certified largest by it
            best, best_value = frontier.best
        plain = lambda p: dict(lattice.values(p))  # noqa: E731
        return {
            "name": "frontier",
            "objective": frontier.objective or "lattice rank",
            "study_name": study.study_name,
            "storage": study.location,
            "exact": frontier.complete,
            "unknown": frontier.unknown,
            "uncertain": [plain(p) for p in frontier.open_uncertain],
            "compiles_this_run": state.compiled_now,
            "compiles_before": state.compiled_before,
            "inferred_recorded": state.inferred_recorded,
            "certificate_size": len(frontier.maximal_passing) + len(frontier.minimal_failing),
            "best_params": plain(best) if best is not None else None,
            "best_value": best_value,
            "maximal_passing": [plain(p) for p in frontier.maximal_passing],
            "minimal_failing": [plain(p) for p in frontier.minimal_failing],
            # compile_hours_spent / _saved_by_inference, wall_clock_hours (search/cost.py)
            **frontier.cost.results(),
        }
