"""Preloaded by the forkserver of :mod:`entry_points`, so that its children inherit it.

Every MLflow model a run logs checks its requirements against the installed packages, and
MLflow builds its map of them once per process (about 4 s here, by walking every installed
distribution's files): built in the forkserver, it is built once for all the scripts the
tests start, not once each.
"""

from mlflow.utils.requirements_utils import _init_packages_to_modules_map

_init_packages_to_modules_map()
