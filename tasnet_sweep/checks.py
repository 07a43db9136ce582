"""Every check a config gets before any work starts: its values (``config.py``), then what the
chosen unit and compile backend need (``model/catalog.py``, ``compile/``).  Kept apart from
``config.py`` so the config schema imports nothing that imports it back."""

from __future__ import annotations

from .compile import backend_problems
from .config import validate_values
from .model.catalog import unit_problems


def validate(cfg) -> list[str]:
    """One line per problem, each naming the key, the bad value and what would be accepted."""
    problems = validate_values(cfg)
    if not problems:  # unit checks need a sound model config to derive shapes from
        problems.extend(unit_problems(cfg))
        problems.extend(backend_problems(cfg.compiler))
    return problems
