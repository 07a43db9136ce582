"""TEST DOUBLE of Hailo's ``hailo_sdk_client`` -- not a compiler, it compiles nothing.

It follows the API public Hailo code uses (hailo_model_zoo v2.18; see the docstring of
``tasnet_sweep/compile/hailo_dfc.py``) so the ``hailo_dfc`` backend can be tested on machines
without Hailo's wheels: ``ClientRunner`` here is ``FakeClientRunner`` (see ``_double.py``),
which checks the documented call order, arguments and shapes, logs every call, and can be told
through environment variables to raise a real DFC error text, hang or crash.
"""

import os as _os

from ._double import FakeClientRunner as ClientRunner  # noqa: F401
from .exposed_definitions import InferenceContext, States  # noqa: F401

if _os.environ.get("HAILO_DOUBLE_VERSION", "3.33.0") != "none":
    __version__ = _os.environ.get("HAILO_DOUBLE_VERSION", "3.33.0")
