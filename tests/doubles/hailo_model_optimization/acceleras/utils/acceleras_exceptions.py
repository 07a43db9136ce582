"""TEST DOUBLE: the optimizer's exceptions where the DFC raises them from.

Public tracebacks show ``hailo_model_optimization.acceleras.utils.acceleras_exceptions.
BadInputsShape: Data shape ...`` (a user's Raspberry Pi AI Kit report, Vuong02011996/ai-engineer
``08_Hardware_AI/Raspberry_AI_KIT_HAT/error.md``); ``NegativeSlopeExponentNonFixable`` is named
with the same module in public logs.  The backend classifies failures by class name and text.
"""


class AccelerasException(Exception):
    pass


class BadInputsShape(AccelerasException):
    pass


class NegativeSlopeExponentNonFixable(AccelerasException):
    pass
