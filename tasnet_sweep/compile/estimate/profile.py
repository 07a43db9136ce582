"""Hardware profiles for the estimate: load one from the ``hw`` config node, a name in
``conf/hw`` or a yaml file, check it, and derive the totals the allocator works with.

A profile's numbers are PUBLIC Hailo facts (product pages, public compile logs), are FITTED to
recorded outcomes (``FITTED_FIELDS``; ``tasnet_sweep.commands.fit_profile`` refits them) or are
GUESSED (listed in the profile's ``guessed`` field, and repeated in every estimate's log).
``row_brackets`` are no constants but bounds read off real outcomes (brackets.py): the frozen
profile holds them as sorted (family, (pass_max, fail_min)) pairs, ``as_dict`` as a mapping.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ...config import HW_RANGES, ConfigError, HwConfig, bracket_items, validate_hw
from ...resources import CONF_DIR

#: the constants no datasheet gives; fitted to real outcomes, searched by fit_profile
FITTED_FIELDS = ("memory_unit_bytes", "layer_max_clusters", "aux_layer_memory_units")
#: the FITTED constant that stands for a hypothesis rather than a size limit seen on both sides
HYPOTHESIS_FIELDS = ("aux_layer_memory_units",)
PROFILE_FIELDS = tuple(f.name for f in dataclasses.fields(HwConfig))
CONF_HW_DIR = CONF_DIR / "hw"


class _Profile:
    """What a profile adds to ``HwConfig``'s fields: the chip's totals and checked copies."""

    # totals over the chip, per context
    @property
    def control_units(self) -> int:
        return self.clusters * self.control_units_per_cluster

    @property
    def compute_units(self) -> int:
        return self.clusters * self.compute_units_per_cluster

    @property
    def memory_units(self) -> int:
        return self.clusters * self.memory_units_per_cluster

    def total_units(self, resource: str) -> int:
        return self.clusters * getattr(self, f"{resource}_units_per_cluster")

    @property
    def peak_macs_per_s(self) -> float:
        """int8 multiply-accumulates per second at peak (1 MAC = 2 ops)."""
        return self.peak_tops * 1e12 / 2

    @property
    def macs_per_unit_cycle(self) -> float:
        """What one compute unit does per clock cycle, derived from peak TOPS and the clock."""
        return self.peak_macs_per_s / (self.clock_mhz * 1e6 * self.compute_units)

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["guessed"] = list(self.guessed)
        d["row_brackets"] = {family: list(bounds) for family, bounds in self.row_brackets}
        return d

    def replace(self, **changes) -> HwProfile:
        """A checked copy with some fields changed (cheap: no OmegaConf round trip)."""
        unknown = sorted(set(changes) - set(PROFILE_FIELDS))
        if unknown:
            raise ConfigError([f"hw.{unknown[0]} is not a known key: expected one of "
                               f"{', '.join(PROFILE_FIELDS)}"])
        new = dataclasses.replace(self, **_tuples(changes))
        problems: list[str] = []
        validate_hw(new, problems)
        if problems:
            raise ConfigError(problems)
        return new

    def fitted(self) -> dict:
        return {k: getattr(self, k) for k in FITTED_FIELDS}


def _tuples(values: dict) -> dict:
    """``values`` with every list a tuple and every mapping (``row_brackets``) a sorted tuple
    of (key, tuple) pairs, as the frozen (hashable) profile holds them."""
    out = {}
    for k, v in values.items():
        if isinstance(v, list):
            v = tuple(v)
        elif hasattr(v, "items"):
            v = tuple(sorted(bracket_items(v)))
        out[k] = v
    return out


def _frozen_field(f: dataclasses.Field) -> tuple:
    """One ``HwConfig`` field for the frozen profile: a list (``guessed``) becomes a tuple."""
    if f.default_factory is not dataclasses.MISSING:
        return f.name, "tuple", dataclasses.field(default=tuple(f.default_factory()))
    return f.name, f.type, dataclasses.field(default=f.default)


HwProfile = dataclasses.make_dataclass(
    "HwProfile", [_frozen_field(f) for f in dataclasses.fields(HwConfig)], bases=(_Profile,),
    frozen=True, namespace={
        "__module__": __name__,
        "__doc__": "A checked, immutable (hashable) hw profile: the fields and defaults of "
                   "``HwConfig``, defined there once, with the totals and methods of "
                   "``_Profile``.  Build one with ``profile_from_node`` or ``load_profile``."})


def profile_from_node(node) -> HwProfile:
    """A checked profile from an ``hw`` config node (DictConfig or mapping); missing fields take
    the ``HwConfig`` defaults (the Hailo-8 values).  Raises ConfigError, one line per problem."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if OmegaConf.is_config(node) and OmegaConf.get_type(node) is HwConfig:
        merged = node  # a composed config's ``hw``: typed by its schema already, no second merge
    else:
        plain = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) \
            else dict(node)
        try:
            merged = OmegaConf.merge(OmegaConf.structured(HwConfig), plain)
        except OmegaConfBaseException as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError([f"hw profile: {first}"]) from None
    problems: list[str] = []
    validate_hw(merged, problems)
    if problems:
        raise ConfigError(problems)
    values = OmegaConf.to_container(merged, resolve=True)
    return HwProfile(**_tuples(values))


def profile_path(name_or_path: str | Path) -> Path:
    """``hailo8`` -> conf/hw/hailo8.yaml; a path is taken as it is."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        return Path(text)
    return CONF_HW_DIR / f"{text}.yaml"


def load_profile(name_or_path: str | Path) -> HwProfile:
    """Load and check a profile by name (conf/hw) or yaml path; ConfigError on any problem."""
    import yaml
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    path = profile_path(name_or_path)
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in CONF_HW_DIR.glob("*.yaml")))
        raise ConfigError([f"hw profile {str(name_or_path)!r} not found: expected a name in "
                           f"conf/hw ({known}) or a yaml file path"])
    try:
        node = OmegaConf.load(path)
    except (OmegaConfBaseException, yaml.YAMLError, ValueError) as exc:
        raise ConfigError([f"hw profile {str(path)!r} does not parse as yaml: "
                           f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"]
                          ) from None
    return profile_from_node(node)


def parse_overrides(profile: HwProfile, overrides: list[str]) -> HwProfile:
    """Apply ``key=value`` (or ``hw.key=value``) overrides; ConfigError names a bad one."""
    import yaml

    changes = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.removeprefix("hw.")
        if not sep or key not in HW_RANGES:
            raise ConfigError([f"hw override {item!r} is invalid: expected KEY=VALUE with KEY one "
                               f"of {', '.join(HW_RANGES)}"])
        try:
            changes[key] = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError([f"hw override {item!r}: {raw!r} is not a value"]) from None
    return profile.replace(**changes) if changes else profile
