"""Activations chosen by name.  PReLU has one shared slope, as in the paper."""

from __future__ import annotations

from torch import nn

#: what the standalone ``activation`` unit may exercise
UNIT_ACTIVATIONS = ("sigmoid", "relu", "prelu")


def make_activation(name: str) -> nn.Module:
    if name == "prelu":
        return nn.PReLU()
    if name == "relu":
        return nn.ReLU()
    if name == "sigmoid":
        return nn.Sigmoid()
    raise ValueError(f"unknown activation {name!r}; accepted: {', '.join(UNIT_ACTIVATIONS)}")
