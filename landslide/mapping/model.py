"""A trained model ready to map: its network, band set, normalisation and threshold."""

import logging
import pickle
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from landslide.bands import BANDS, band_set
from landslide.errors import UserError
from landslide.mapping.errors import MappingError
from landslide.safe_loading import load_checkpoint
from landslide.task import SegmentationTask

log = logging.getLogger(__name__)

#: The normalisations a mapping run can reproduce (see ``SegmentationTask``).
NORMALIZATIONS = ("minmax",)


@dataclass(frozen=True)
class TrainedModel:
    """A trained network and what it needs of a scene.

    Attributes:
        task: the LightningModule, in eval mode.
        bands: the input bands, in channel order.
        normalization: how inputs are scaled (``minmax``: per-band, the scene's statistics).
        threshold: probability above which a pixel is a landslide (the run's).
        name: the MLflow run name, or the checkpoint's file name.
        checkpoint: where the weights were read.
        run_id: the MLflow run the weights belong to, if any.
    """

    task: SegmentationTask
    bands: tuple[str, ...]
    normalization: str
    threshold: float
    name: str
    checkpoint: Path
    run_id: str | None = None

    @property
    def total_stride(self) -> int:
        """The network's down-sampling factor: windows are best a multiple of it."""
        return int(getattr(self.task.model, "total_stride", 1))


def load_model(
    checkpoint: str | Path,
    name: str | None = None,
    run_id: str | None = None,
    run_bands: Sequence[str] | None = None,
) -> TrainedModel:
    """Load a ``SegmentationTask`` checkpoint on the CPU.

    The band set comes from the checkpoint (saved since the task records it), else from
    the training run's config (``run_bands``), else, for a ten-channel network, the paper's
    ten bands with a warning.

    Args:
        checkpoint: a ``.ckpt`` written by ``train.py``.
        name: a name for the model; defaults to the file's name.
        run_id: the MLflow run it belongs to.
        run_bands: the band set of the run's config, if known.

    Raises:
        MappingError: if the file is missing, unreadable or not a landslide model.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise MappingError(f"model={path}: no such checkpoint file")
    try:
        # Refuses damaged, non-weights and foreign-code files in one line before Lightning
        # builds anything (reading the file twice costs 0.06 s for a full-size ResU-SENet).
        load_checkpoint(path)
        task = SegmentationTask.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    except UserError as err:  # names the file and the fix
        raise MappingError(f"model={err}") from err
    except (
        RuntimeError,
        EOFError,
        KeyError,
        TypeError,
        pickle.UnpicklingError,
        zipfile.BadZipFile,
        ValueError,
    ) as err:  # torch raises all of these for bad files
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise MappingError(
            f"model={path}: not a readable landslide checkpoint ({reason}); give a best.ckpt "
            "written by train.py, or an MLflow run id or name"
        ) from err
    task.eval()
    hparams = task.hparams
    bands = hparams.get("bands") or run_bands
    if not bands:
        channels = _in_channels(task)
        if channels != len(BANDS):
            raise MappingError(
                f"model={path}: the checkpoint does not record its band set and its network "
                f"reads {channels} channels; retrain it with this version of train.py"
            )
        log.warning("%s: no band set recorded; assuming the paper's ten bands", path)
        bands = BANDS
    normalization = hparams.get("normalization", "minmax")
    if normalization not in NORMALIZATIONS:
        raise MappingError(
            f"model={path}: normalisation '{normalization}' cannot be reproduced at mapping "
            f"time (known: {', '.join(NORMALIZATIONS)})"
        )
    try:
        bands = tuple(bands)
        if band_set(bands) != bands:
            raise ValueError(f"bands {list(bands)} are not in the project's band order")
    except ValueError as err:
        raise MappingError(f"model={path}: {err}") from err
    return TrainedModel(
        task=task,
        bands=bands,
        normalization=normalization,
        threshold=float(hparams.get("threshold", 0.5)),
        name=name or path.stem,
        checkpoint=path,
        run_id=run_id,
    )


def _in_channels(task: SegmentationTask) -> int:
    first = next(m for m in task.model.modules() if isinstance(m, torch.nn.Conv2d))
    return first.in_channels
