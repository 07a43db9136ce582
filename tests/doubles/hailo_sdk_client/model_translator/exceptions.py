"""TEST DOUBLE: the parser's exceptions, in the module the README names."""


class ParsingWithRecommendationException(Exception):
    pass


class UnsupportedModelError(Exception):
    pass
