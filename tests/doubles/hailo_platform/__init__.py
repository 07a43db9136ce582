"""TEST DOUBLE of HailoRT's ``hailo_platform`` package root (see ``pyhailort/pyhailort.py``).

Like HailoRT 4.23's ``hailo_platform/__init__.py`` it re-exports a subset of
``hailo_platform.pyhailort.pyhailort``: of the exceptions only ``HailoRTException``; timeouts,
invalid HEFs and the rest must be imported from ``hailo_platform.pyhailort.pyhailort``.
"""

from hailo_platform.pyhailort.pyhailort import (  # noqa: F401
                                                HEF,
                                                ConfigureParams,
                                                Device,
                                                FormatType,
                                                HailoRTException,
                                                HailoSchedulingAlgorithm,
                                                HailoStreamInterface,
                                                InferVStreams,
                                                InputVStreamParams,
                                                OutputVStreamParams,
                                                VDevice,
)

__version__ = "4.23.0"
