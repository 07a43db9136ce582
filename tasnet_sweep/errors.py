"""A user's mistake as the commands report it: one line per problem, and the exit codes."""

from __future__ import annotations

import errno
import sys

#: bad input (a config value, a file a user gave): nothing was run
EXIT_CONFIG = 2
#: a run that cannot write its files (a full or read-only disk): not the config's fault
EXIT_DISK = 1
DISK_ERRORS = frozenset({errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM})


class ConfigError(ValueError):
    """A user mistake in the config: printed as one line, exit code 2."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def report_config_errors(problems: list[str], prog: str = "tasnet_sweep",
                         label: str = "config error") -> int:
    """Print each problem as ``<prog>: <label>: <problem>``; returns EXIT_CONFIG."""
    for problem in problems:
        print(f"{prog}: {label}: {problem}", file=sys.stderr)
    return EXIT_CONFIG
