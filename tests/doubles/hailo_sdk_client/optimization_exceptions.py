"""TEST DOUBLE: the optimizer's exceptions.

The README names these classes but not their module; the double puts them here.  The backend
classifies failures by class name and text only, so the module does not matter to it.
"""


class BadInputsShape(Exception):
    pass


class NegativeSlopeExponentNonFixable(Exception):
    pass
