"""Checkpoints that a crash cannot corrupt, that resume bit for bit, and that name their run."""

import os
import random
import uuid
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins.io import TorchCheckpointIO

from landslide.lifecycle import Interrupts
from landslide.safe_loading import load_checkpoint

#: Key of the MLflow run id in every checkpoint this project writes.
RUN_ID_KEY = "landslide_run_id"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temporary file in its folder, then rename it into place.

    Lightning writes checkpoints in place (through fsspec, whose local "transaction" stages
    the file in the system's temporary folder and then copies it across file systems), so a
    kill mid-write leaves a truncated ``last.ckpt`` that no resume can read. A rename within
    one folder is atomic: readers see the old checkpoint or the new one, never half of one.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        """Write ``checkpoint`` to ``path`` through a temporary file and an atomic rename."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)


def random_states() -> dict[str, Any]:
    """The state of every random generator a run draws from.

    Returns:
        Plain containers and tensors, so a checkpoint holding them still loads with
        ``torch.load(weights_only=True)``.
    """
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, python_state, python_gauss = random.getstate()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": {"version": version, "state": list(python_state), "gauss": python_gauss},
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_random_states(states: dict[str, Any]) -> None:
    """Restore what :func:`random_states` captured."""
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
    )
    p = states["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class RunState(Callback):
    """Store the MLflow run id and the random generators' state in every checkpoint.

    The run id lets a run prove that the weights it tests and logs are its own. The random
    state makes a resumed run draw the same batches and augmentations as an uninterrupted
    one: Lightning restores weights, optimiser and loop counters, but not the generators.
    """

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    def state_dict(self) -> dict[str, Any]:
        """The run id and the random generators' state, saved with the callback."""
        return {"run_id": self.run_id, "random": random_states()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the random generators' state, refusing another run's checkpoint.

        Raises:
            RuntimeError: If the checkpoint was written by a different run.
        """
        if state_dict.get("run_id") != self.run_id:
            raise RuntimeError(
                f"checkpoint of run {state_dict.get('run_id')} loaded into run {self.run_id}"
            )
        if "random" in state_dict:
            set_random_states(state_dict["random"])

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Store the run id at the checkpoint's top level, for :func:`checkpoint_run_id`."""
        checkpoint[RUN_ID_KEY] = self.run_id


class StopAtBatchEnd(Callback):
    """Let SIGINT and SIGTERM stop the fit and test loops only at a batch end.

    While the loops run, :class:`~landslide.lifecycle.Interrupts` only note a signal, and
    this raises it after the batch, outside any MLflow store write (a signal striking inside
    one could leave the store locked, so the run could not be marked KILLED).
    """

    def __init__(self, interrupts: Interrupts) -> None:
        self.interrupts = interrupts

    # Each hook takes whatever Lightning passes (trainer, module, batch, ...) and needs none.
    def _defer(self, *args: Any, **kwargs: Any) -> None:
        self.interrupts.deferred = True

    def _resume_at_once(self, *args: Any, **kwargs: Any) -> None:
        self.interrupts.deferred = False
        self.interrupts.check()

    def _check(self, *args: Any, **kwargs: Any) -> None:
        self.interrupts.check()

    def _undefer(self, *args: Any, **kwargs: Any) -> None:
        self.interrupts.deferred = False

    on_fit_start = on_test_start = _defer
    on_fit_end = on_test_end = _resume_at_once
    on_train_batch_end = on_validation_batch_end = on_test_batch_end = _check
    on_exception = _undefer  # whatever stops the loops, signals act at once again


def checkpoint_run_id(path: str | Path) -> str | None:
    """The MLflow run id stored in a checkpoint (None for checkpoints without one)."""
    return load_checkpoint(path).get(RUN_ID_KEY)
