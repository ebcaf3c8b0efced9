"""The one error type of ``explain.py``."""

from landslide.errors import UserError


class ExplainError(UserError):
    """Bad input to ``explain.py``: the message is one line naming the input and the fix."""
