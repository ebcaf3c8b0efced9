"""The one error type of mapping."""


class MappingError(ValueError):
    """Bad input to ``map.py``: the message is one line naming the input and the fix."""
