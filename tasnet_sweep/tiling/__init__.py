"""Tiling: turn one model into a plan of small NPU units stitched on the host.

plan.py builds the plan (distinct units, weight instances, host steps), stitch.py runs it
(keeping tensors in the units' layout, tiled.py, between host ops, host_ops.py),
executors.py runs one unit instance (torch, onnxruntime, hailort; onnxruntime also every
instance of a unit in a layer at once), parity.py compares the stitched chain with the
untiled model, run.py is the trial entry point ``run_tiled``.
"""

from .plan import Plan, build_plan  # noqa: F401
from .run import run_tiled  # noqa: F401
