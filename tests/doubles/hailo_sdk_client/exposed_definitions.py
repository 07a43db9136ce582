"""TEST DOUBLE: ``hailo_sdk_client.exposed_definitions`` (runner states, inference contexts).

The README places ``States`` here; where the real SDK defines ``InferenceContext`` it does not say
(it is importable from the package root), so the double keeps it here too.
"""

import enum


class States(str, enum.Enum):
    UNINITIALIZED = "uninitialized"
    HAILO_MODEL = "hailo_model"
    QUANTIZED_MODEL = "quantized_model"
    COMPILED_MODEL = "compiled_model"


class InferenceContext(str, enum.Enum):
    SDK_NATIVE = "sdk_native"
    SDK_FP_OPTIMIZED = "sdk_fp_optimized"
    SDK_QUANTIZED = "sdk_quantized"
    SDK_BIT_EXACT = "sdk_bit_exact"
