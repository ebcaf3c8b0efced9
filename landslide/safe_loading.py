"""Loading checkpoints and stored configs without running code they name.

A checkpoint's hyperparameters and a run's logged ``config.yaml`` hold Hydra specs, and
instantiating a spec calls whatever its ``_target_`` names: ``torch.load(weights_only=True)``
guards the unpickling, not what is built afterwards from the plain values it returns. So
every ``_target_`` is resolved and checked before anything is built: it must be a class
defined in this package's networks, data modules or simulated world, or a ``torch.optim``
optimiser. Checkpoints are read weights-only, and a damaged, truncated or foreign file gives
one line naming it and the fix.
"""

import inspect
import pickle
import re
import reprlib
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

import landslide.data
import landslide.models
import landslide.world
from landslide.errors import DataError, UnsafeLoadError

#: The packages whose classes a stored spec may name: the networks, the data module and
#: the simulated world it is given.
TRUSTED_PACKAGES = (landslide.models.__name__, landslide.data.__name__, landslide.world.__name__)
_PREFIXES = tuple(f"{name}." for name in TRUSTED_PACKAGES)
#: Besides those, a spec may name an optimiser class of ``torch.optim``.
_OPTIMIZERS = "torch.optim."
_TARGET = "_target_"
#: What to do about a refused spec or checkpoint.
FIX = (
    "use only checkpoints and runs written by this project's train.py, with networks in "
    f"{TRUSTED_PACKAGES[0].replace('.', '/')}/"
)
_CHECKPOINT_FIX = "give a best.ckpt written by this project's train.py"
# Shortens a crafted non-string target in messages; names stay whole.
_REPR = reprlib.Repr(maxstring=200, maxother=200)


def check_trusted(spec: Any, key: str = "", origin: str = "") -> None:
    """Refuse ``spec`` if any ``_target_`` in it names code outside :data:`TRUSTED_PACKAGES`.

    Targets are checked at any depth. A target must start with a trusted package and resolve
    to a class defined there: the resolution (``hydra.utils.get_object``) imports only this
    package's modules, and the class check stops paths such as
    ``landslide.models.resunet.torch.save`` that pass through a trusted module to foreign
    code. Nothing is instantiated.

    Args:
        spec: a mapping, sequence or OmegaConf container (interpolations are resolved).
        key: the dotted name of ``spec`` in messages, e.g. ``net``.
        origin: what holds ``spec``, prefixed to messages, e.g. ``"run.ckpt: "``.

    Raises:
        UnsafeLoadError: naming the key, the target and the fix.
    """
    if isinstance(spec, DictConfig | ListConfig):
        spec = OmegaConf.to_container(spec, resolve=True)
    if isinstance(spec, Mapping):
        for name, value in spec.items():
            path = f"{key}.{name}" if key else str(name)
            if name == _TARGET:
                _check_target(value, path, origin)
            else:
                check_trusted(value, path, origin)
    elif isinstance(spec, list | tuple):
        for i, value in enumerate(spec):
            check_trusted(value, f"{key}[{i}]", origin)


def instantiate_trusted(spec: Any, key: str = "", origin: str = "", /, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate(spec, **kwargs)`` after :func:`check_trusted`.

    The check covers ``spec`` and every keyword argument.

    Args:
        spec: the Hydra spec.
        key: the dotted name of ``spec`` in messages (positional only).
        origin: what holds ``spec``, prefixed to messages (positional only).
        **kwargs: passed to ``instantiate``.

    Raises:
        UnsafeLoadError: if a target names code outside this package.
    """
    check_trusted(spec, key, origin)
    for name, value in kwargs.items():
        check_trusted(value, f"{key}.{name}" if key else name, origin)
    return instantiate(spec, **kwargs)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a Lightning checkpoint weights-only and check the specs it holds.

    Args:
        path: the ``.ckpt`` file.
        map_location: where tensors are loaded.

    Returns:
        The checkpoint dict (``state_dict``, ``hyper_parameters``, ...).

    Raises:
        DataError: if the file is missing, damaged, truncated or not a Lightning checkpoint.
        UnsafeLoadError: if it holds objects other than tensors and plain values, or a
            ``_target_`` outside this package.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such checkpoint file; {_CHECKPOINT_FIX}")
    try:
        with warnings.catch_warnings():
            # Raw pickles of another protocol warn before they are refused below.
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        foreign = re.search(r"GLOBAL (\S+)", str(err))
        if foreign:
            raise UnsafeLoadError(
                f"{path}: holds {foreign[1]}, not only weights and plain values; refused "
                f"without unpickling it (it could run any code): {FIX}"
            ) from None
        raise _unreadable(path, "not a PyTorch checkpoint") from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise _unreadable(path, f"damaged or truncated: {_first_sentence(err)}") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise _unreadable(path, f"a {type(checkpoint).__name__} without a state_dict")
    check_trusted(checkpoint, origin=f"{path}: ")
    return checkpoint


def _check_target(target: Any, key: str, origin: str) -> None:
    if isinstance(target, str) and target.startswith(_OPTIMIZERS):
        # The task's optimiser (conf/train.yaml's task.optimizer): a torch.optim class
        # only, built on the network's parameters.
        try:
            obj = get_object(target)
        except (ImportError, AttributeError, ValueError):
            obj = None
        if inspect.isclass(obj) and issubclass(obj, torch.optim.Optimizer):
            return
    if isinstance(target, str) and target.startswith(_PREFIXES):
        try:
            obj = get_object(target)
        except (ImportError, AttributeError, ValueError):
            obj = None
        if inspect.isclass(obj) and obj.__module__.startswith(_PREFIXES):
            return
    raise UnsafeLoadError(
        f"{origin}{key}={_REPR.repr(target)} is not a class of "
        f"{' or '.join(TRUSTED_PACKAGES)} nor a torch.optim optimiser; refused before anything "
        f"was built (it could run any code): {FIX}"
    )


def _unreadable(path: Path, reason: str) -> DataError:
    return DataError(f"{path}: not a readable landslide checkpoint ({reason}); {_CHECKPOINT_FIX}")


def _first_sentence(err: BaseException) -> str:
    text = str(err).strip()
    if not text:
        return "empty file" if isinstance(err, EOFError) else type(err).__name__
    return text.splitlines()[0].split(". ")[0].rstrip(".")
