"""The project's user-facing error: one line naming the input and the fix.

Entry scripts print the message alone and exit with status 1 (``train.py: <message>``).
In a multirun the error propagates instead, so Hydra runs the sweep's other jobs first; it
derives from Hydra's ``CompactHydraException`` so that Hydra then prints the message, not a
traceback.
"""

from hydra.errors import CompactHydraException


class UserError(CompactHydraException, ValueError):
    """Bad input (config, data, store, checkpoint): the message says what and how to fix it."""


class ConfigError(UserError):
    """A config value that cannot work, found before any data is read or run is created."""


class DataError(UserError):
    """A raster or data folder that cannot be read as it is."""


class TrackingError(UserError):
    """An MLflow store or tracking server that cannot be used."""


class UnsafeLoadError(UserError):
    """A checkpoint or stored config that names code outside this package."""


class TrainingDiverged(UserError):
    """A validation loss that is not finite: NaN inputs or a diverged optimisation."""
