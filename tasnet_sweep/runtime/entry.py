"""The shared shape of the runtime commands: check the config before Hydra runs, let Hydra
write nothing of its own (no run directory, .hydra or log file), and turn a user's mistake
into one line and exit code 2."""

from __future__ import annotations

import contextlib
import sys

from ..cli import preflight
from ..errors import EXIT_CONFIG, ConfigError, report_config_errors

#: Hydra settings for commands whose outputs go to runtime.output_dir only
QUIET_HYDRA = ["hydra.run.dir=.", "hydra.output_subdir=null", "hydra/job_logging=none",
               "hydra/hydra_logging=none"]


def main(prog: str, hydra_fn, argv: list[str] | None = None, about: str = "") -> int:
    """Run a runtime command; ``about`` is the one line its ``--help`` opens with."""
    argv = sys.argv[1:] if argv is None else argv
    if about and ("--help" in argv or "-h" in argv):
        argv = [*argv, f"hydra.help.header='{prog}: {about}'", "hydra.help.footer=''"]
    if "-m" in argv or "--multirun" in argv:
        print(f"{prog}: error: -m/--multirun is not supported: run one input at a time",
              file=sys.stderr)
        return EXIT_CONFIG
    problems = preflight(argv)
    if problems:
        return report_config_errors(problems, prog)
    sys.argv = [sys.argv[0], *argv, *QUIET_HYDRA]
    hydra_fn()
    return 0


def command(prog: str, hydra_fn, about: str):
    """A runtime command's ``main(argv=None) -> exit code``: what ``python -m`` and its
    console script (``tasnet-sweep-<name>``) call."""
    def command_main(argv: list[str] | None = None) -> int:
        return main(prog, hydra_fn, argv, about)

    return command_main


@contextlib.contextmanager
def user_errors(prog: str):
    """Bad input (config, audio, checkpoint, missing files) -> one line on stderr, exit 2."""
    from .audio import AudioError

    try:
        yield
    except ConfigError as exc:
        sys.exit(report_config_errors(exc.problems, prog, "error"))
    except (AudioError, FileNotFoundError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
