"""TEST DOUBLE: the backend's exceptions (the README: "most likely" this module)."""


class BackendAllocatorException(Exception):
    pass


class BackendRuntimeException(Exception):
    pass


class BackendScriptParserException(Exception):
    pass
