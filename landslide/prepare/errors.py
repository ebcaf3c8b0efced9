"""The one error type of data preparation."""


class PrepareError(ValueError):
    """Bad input to ``prepare.py``: the message is one line naming the file and the fix."""
