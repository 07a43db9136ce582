"""The offline estimate of the Hailo allocator (``compiler=estimate``).

graph.py reads the ONNX graph as the parser would, resources.py costs each layer, allocator.py
places the layers on a hardware profile (profile.py), brackets.py says where recorded real
outcomes leave the verdict open (``uncertain``), backend.py wraps it as a CompileBackend.
Every verdict is labelled ``evidence=estimate``; nothing here writes a .hef.
"""

from .backend import EstimateBackend

__all__ = ["EstimateBackend"]
