"""Where the package's own files live: its Hydra configs and the public outcomes table.

Both ship inside the package, so every command finds them from any working directory and from
an installed wheel.  In a source checkout ``tasnet_sweep/conf`` is a link to the top-level
``conf/`` folder; a built wheel holds a copy.  Hydra reads the configs as the package
``pkg://tasnet_sweep.conf``.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: Hydra's name for the config package (``config_path`` of every entry point)
CONF_PKG = "pkg://tasnet_sweep.conf"
CONF_MODULE = "tasnet_sweep.conf"
#: the same configs as a folder, for listing a group's options
CONF_DIR = PACKAGE_DIR / "conf"
DATA_DIR = PACKAGE_DIR / "data"
#: real DFC 3.33.0 outcomes on hailo8 (provenance in the file's header)
PUBLIC_OUTCOMES = DATA_DIR / "dfc_outcomes_public.tsv"


def group_options(group: str) -> list[str]:
    """The option names of a config group, e.g. ``group_options("search")``."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
