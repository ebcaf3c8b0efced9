"""Training on several processes (Lightning's DDP): one run, one owner, followers.

A training on N processes is still one MLflow run and one output folder. The process of
global rank 0, the *owner*, does what a single-process run does: it checks for a finished
run, claims the MLflow run, logs, checkpoints and records. The other ranks, *followers*,
train and test their share of each batch and write nothing: no MLflow run, no output folder,
no checkpoint. The owner tells them which run they join in a hand-off file (:class:`Handoff`).

Followers start in one of two ways:

- **Lightning starts them** (``trainer=ddp`` on one machine). Its DDP launcher runs the
  script again with ``LOCAL_RANK`` set and, under Hydra, the original command line plus a
  run folder. That composes the config again and, in a multirun, runs the whole sweep in
  each child, with extra output folders (Lightning #11300, lightning-hydra-template #393,
  hydra #2070). So the owner writes its *resolved* config into the hand-off and points the
  children at it with :data:`HANDOFF_ENV` (they inherit the environment); ``train.py``
  hands such a process to :func:`landslide.training.follow`, without Hydra.
- **SLURM starts them** (``hydra/launcher=slurm``, one task per device, as Lightning's
  SLURM support requires). Every task runs the same Hydra job in the same job folder; the
  owner leaves the hand-off there under the SLURM job's id, and the others wait for it.

Other launchers that start every rank themselves (``torchrun``) are refused: each rank would
compose its own config and output folder.
"""

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from landslide.errors import ConfigError
from landslide.files import write_atomic

#: The environment variable that points a process Lightning started at its hand-off file.
HANDOFF_ENV = "LANDSLIDE_DDP_HANDOFF"
#: Folder of the hand-off files, inside the run's output folder.
HANDOFF_DIR = ".ddp"
#: How long a follower SLURM started waits for its owner's hand-off (the owner may be
#: generating the default world first).
HANDOFF_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class Handoff:
    """What the owner tells its followers.

    Attributes:
        config: the owner's resolved config (a plain container): followers build the same
            data, network and trainer from it.
        run_id: the MLflow run they train, or None when the owner skipped the setting (it
            has a complete run); followers then skip it too.
        checkpoint_dir: the run's checkpoint folder.
        resume_from: the checkpoint the owner continues from (None for a fresh run).
        metrics: a skipped setting's recorded metrics.
    """

    config: dict[str, Any]
    run_id: str | None
    checkpoint_dir: str | None = None
    resume_from: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)


def _int_env(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else None


def slurm_tasks() -> int:
    """The number of tasks of this SLURM job step (1 outside SLURM)."""
    return _int_env("SLURM_NTASKS") or 1


def global_rank() -> int:
    """This process's rank in a distributed training (0 when there is none).

    Read from the environment before any process group exists: ``LOCAL_RANK`` for a rank
    Lightning started, ``SLURM_PROCID`` for a task of a multi-task SLURM job.

    Raises:
        ConfigError: the process was started by a launcher that starts every rank itself
            outside SLURM (``torchrun``, ``RANK`` set): its ranks would not share one run.
    """
    if os.environ.get(HANDOFF_ENV):
        return _int_env("LOCAL_RANK") or 0
    if slurm_tasks() > 1:
        return _int_env("SLURM_PROCID") or 0
    rank = _int_env("RANK") or _int_env("LOCAL_RANK")
    if rank:
        raise ConfigError(
            f"this process was started as rank {rank} by a launcher such as torchrun, whose "
            "ranks would each make their own run and output folder; start train.py once "
            "with trainer=ddp (Lightning starts the ranks) or on SLURM with "
            "hydra/launcher=slurm"
        )
    return 0


def started_by_lightning() -> bool:
    """Whether Lightning's DDP launcher started this process as a rank > 0 of a run."""
    return bool(os.environ.get(HANDOFF_ENV)) and (_int_env("LOCAL_RANK") or 0) > 0


def slurm_handoff_path(output_dir: str | Path) -> Path:
    """The hand-off file of this SLURM job (attempt) in ``output_dir``.

    Named after the job and its restart count, so a requeued job never reads the hand-off
    of its previous attempt.
    """
    job = os.environ.get("SLURM_JOB_ID", "0")
    restart = os.environ.get("SLURM_RESTART_COUNT", "0")
    return Path(output_dir) / HANDOFF_DIR / f"slurm-{job}-{restart}.json"


def publish(handoff: Handoff, output_dir: str | Path) -> Path:
    """Write the hand-off for this run's followers and point Lightning's ranks at it.

    Under SLURM the followers already run and look for it in the job folder; the ranks
    Lightning starts later inherit :data:`HANDOFF_ENV`.
    """
    if slurm_tasks() > 1:
        path = slurm_handoff_path(output_dir)
    else:
        path = Path(output_dir) / HANDOFF_DIR / f"rank0-{os.getpid()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(asdict(handoff)))
    os.environ[HANDOFF_ENV] = str(path)
    return path


def read_handoff(path: str | Path) -> Handoff:
    """Read a hand-off file the owner wrote."""
    return Handoff(**json.loads(Path(path).read_text()))


def wait_for_handoff(
    path: Path, timeout_s: float = HANDOFF_TIMEOUT_S, poll_s: float = 0.5
) -> Handoff:
    """Wait for the owner of this SLURM job to write its hand-off.

    Raises:
        TimeoutError: none came within ``timeout_s`` (the owner failed before it).
    """
    deadline = time.monotonic() + timeout_s
    while not path.is_file():
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"rank {global_rank()}: the owner (rank 0) wrote no hand-off {path} within "
                f"{timeout_s:.0f} s; see rank 0's log for why it stopped"
            )
        time.sleep(poll_s)
    return read_handoff(path)


def joblib_device(accelerator: str, devices: Any) -> list[int] | None:
    """The GPU of this job of a ``hydra/launcher=joblib`` sweep, or None to leave it to Lightning.

    Jobs running at once get consecutive job numbers; job ``n`` takes GPU ``n % count``, so
    N jobs spread over the visible GPUs, and share them when N is larger (each then gets a
    fraction of a GPU). Only single-device jobs on a machine with several GPUs are placed.
    """
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized() or str(devices) != "1":
        return None
    hydra = HydraConfig.get()
    if "joblib" not in str(hydra.launcher.get("_target_", "")):
        return None
    if str(accelerator).lower() not in ("gpu", "cuda", "auto"):
        return None
    import torch

    count = torch.cuda.device_count()
    if count < 2:
        return None
    return [int(hydra.job.num) % count]


@contextmanager
def isolated_training() -> Iterator[None]:
    """Give the process back as it was before a training, for the next job of a multirun.

    Lightning's DDP launcher leaves its variables (``LOCAL_RANK``, ``MASTER_PORT``, ...) in
    the environment and the process group initialised: the next DDP job in this process
    would take them for ranks started outside and talk to the previous job's exited ranks.
    """
    saved = dict(os.environ)
    try:
        yield
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        os.environ.clear()
        os.environ.update(saved)
