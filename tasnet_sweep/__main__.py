"""``python -m tasnet_sweep``: check the config (and every job of a grid), then hand it to Hydra.

Config mistakes are caught before Hydra creates any directory: one line per problem on
stderr, exit code 2, no traceback.
"""

from __future__ import annotations

from .cli import entry

if __name__ == "__main__":
    entry()
