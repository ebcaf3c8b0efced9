"""The one error type of data preparation."""

from landslide.errors import UserError


class PrepareError(UserError):
    """Bad input to ``prepare.py``: the message is one line naming the file and the fix."""
