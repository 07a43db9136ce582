"""``python -m tasnet_sweep --help``, answered from the config folder without Hydra.

Hydra's own app help composes the config and deep-copies its config store once per group to
list the options (well over a second); this reads the same facts from the files: the groups and
their options (``conf/<group>/*.yaml``, and ``--config-dir``'s), the defaults and what each
group is for (the defaults list of ``conf/config.yaml``), and the other commands.  The composed
config is ``--cfg job``; Hydra's own flags are ``--hydra-help``.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from . import commands
from .resources import CONF_DIR

HELP_FLAGS = ("-h", "--help")
WIDTH = 100
#: what Hydra's parser takes before these flags name a config folder or file of the user's
_CONFIG_DIR_FLAGS = ("--config-dir", "-cd")
_DEFER_FLAGS = ("--config-path", "-cp", "--config-name", "-cn", "--hydra-help")
_DEFAULT = re.compile(r"^\s*-\s*([\w/]+):\s*(\S+)\s*(?:#\s*(.*))?$")
_COMMAND = re.compile(r"^- ``(\w+)``: (.*)$")


def wants_own_help(argv: list[str]) -> bool:
    """``--help`` of the package's own configs (with ``--config-path``/``--config-name``, or
    ``--hydra-help``, Hydra answers)."""
    flags = {a.split("=", 1)[0] for a in argv}
    return bool(flags & set(HELP_FLAGS)) and not flags & set(_DEFER_FLAGS)


def _config_dir(argv: list[str]) -> Path | None:
    for i, arg in enumerate(argv):
        flag, eq, value = arg.partition("=")
        if flag in _CONFIG_DIR_FLAGS:
            return Path(value) if eq else (Path(argv[i + 1]) if i + 1 < len(argv) else None)
    return None


def defaults(conf_dir: Path = CONF_DIR) -> dict[str, tuple[str, str]]:
    """group -> (default option, what the group is for), from config.yaml's defaults list."""
    found, inside = {}, False
    for line in (conf_dir / "config.yaml").read_text(encoding="utf-8").splitlines():
        if line.startswith("defaults:"):
            inside = True
        elif inside and not line.startswith((" ", "-")):
            break
        elif inside and (m := _DEFAULT.match(line)):
            found[m.group(1)] = (m.group(2), m.group(3) or "")
    return found


def groups(*folders: Path) -> dict[str, list[str]]:
    """group -> its options, over every folder (a user's ``--config-dir`` adds to them)."""
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in folder.glob("*/*.yaml"):
            if path.parent.name != "hydra":  # hydra/launcher etc.: --hydra-help lists them
                found.setdefault(path.parent.name, set()).add(path.stem)
    return {g: sorted(options) for g, options in sorted(found.items())}


def _header(conf_dir: Path) -> str:
    import yaml

    app = yaml.safe_load((conf_dir / "config.yaml").read_text(encoding="utf-8"))["hydra"]["help"]
    return app["header"].replace("${hydra.help.app_name}", app["app_name"]).rstrip()


def command_lines() -> list[str]:
    """Each command of ``tasnet_sweep.commands`` with what it does (from its docstring)."""
    found = [m.groups() for line in (commands.__doc__ or "").splitlines()
             if (m := _COMMAND.match(line.strip()))]
    width = max((len(name) for name, _ in found), default=0)
    return [f"  {name:<{width}}  {what}" for name, what in found]


def help_text(argv: list[str]) -> str:
    extra = _config_dir(argv)
    folders = [CONF_DIR, *([extra] if extra is not None and extra.is_dir() else [])]
    chosen = defaults()
    lines = [_header(CONF_DIR), "",
             "usage: python -m tasnet_sweep [-m] [--config-dir DIR] [group=option ...] "
             "[key=value ...]",
             "       (tasnet-sweep is the same command)", "",
             "== Configuration groups ==",
             "Compose your configuration from those groups (group=option); [the default]:", ""]
    for group, options in groups(*folders).items():
        default, what = chosen.get(group, ("none", f"not chosen unless given: +{group}=NAME"))
        lines.append(textwrap.fill(f"{group}: {', '.join(options)}", WIDTH,
                                   subsequent_indent="    "))
        lines.append(f"    [{'none' if default == 'null' else default}] {what}".rstrip())
    lines += ["", "== Config ==",
              "Override any value with key=value (model.bn=64); sweep with -m (model.bn=32,48,64).",
              "The composed config, every key you can set: python -m tasnet_sweep --cfg job "
              "[overrides]",
              "Hydra's own flags (--multirun, --cfg, --info, --config-dir, ...): "
              "python -m tasnet_sweep --hydra-help", "",
              "== Other commands ==",
              "python -m tasnet_sweep.commands.NAME or tasnet-sweep-NAME (underscores as "
              "dashes); each takes --help:",
              *command_lines()]
    return "\n".join(lines) + "\n"
