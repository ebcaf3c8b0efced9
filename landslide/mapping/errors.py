"""The one error type of mapping."""

from landslide.errors import UserError


class MappingError(UserError):
    """Bad input to ``map.py``: the message is one line naming the input and the fix."""
