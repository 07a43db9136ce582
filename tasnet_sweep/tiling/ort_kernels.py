"""Host elementwise kernels through onnxruntime, where it is installed.

numpy's float32 ``exp`` is not vectorised on every CPU: a sigmoid over a layer's mask (two
sources x 256 channels x 4000 frames) takes ~13 ms in numpy and ~3 ms in onnxruntime's MLAS
kernel, which makes it the largest single host cost of a stitched run.  Where onnxruntime is
missing (a lean device image running only HailoRT) the caller falls back to numpy.
"""

from __future__ import annotations

import threading

import numpy as np

_sessions: dict[str, object] = {}
_lock = threading.Lock()


def _session(op: str):
    with _lock:
        if op not in _sessions:
            try:
                import onnxruntime as ort
                from onnx import TensorProto, helper
            except ImportError:
                _sessions[op] = None
                return None
            shape = ["n", "c", "w"]
            graph = helper.make_graph(
                [helper.make_node(op, ["x"], ["y"])], f"host_{op.lower()}",
                [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
            model.ir_version = 8
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.log_severity_level = 3
            _sessions[op] = ort.InferenceSession(model.SerializeToString(), opts,
                                                 providers=["CPUExecutionProvider"])
        return _sessions[op]


def sigmoid(x: np.ndarray) -> np.ndarray | None:
    """sigmoid(x) for a contiguous float32 array, or None without onnxruntime."""
    sess = _session("Sigmoid")
    if sess is None:
        return None
    rows = np.ascontiguousarray(x, np.float32).reshape(-1, 1, x.shape[-1])  # any rank -> 3
    return sess.run(None, {"x": rows})[0].reshape(x.shape)
