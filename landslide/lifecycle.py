"""The life of one training run in MLflow, from creation or resumption to an honest status.

Each run is owned by one process while it trains.

- A run is FINISHED only once testing and artifact logging succeeded, and then carries the
  tag :data:`COMPLETE`; readers (report, model selection, mapping) keep only complete runs
  (:func:`is_complete`).
- A failure ends it FAILED with the error as the tag :data:`ERROR`; SIGINT or SIGTERM ends
  it KILLED and the process exits with 128 + the signal number.
- While a process trains a run it holds a file lock (:data:`LOCK`), so a run left RUNNING by
  SIGKILL or a crash is recognised (its lock is free), marked KILLED and resumable, and can
  be continued with ``resume=true`` from its last checkpoint.
- Runs are keyed by their resolved config (:func:`config_key`), so a finished setting can be
  skipped and an interrupted one found again.
"""

import hashlib
import json
import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
from filelock import FileLock, Timeout
from mlflow.entities import Run
from omegaconf import DictConfig, OmegaConf

from landslide.errors import ConfigError
from landslide.metrics import METRICS

log = logging.getLogger(__name__)

#: Tags this module writes on a run.
CONFIG_KEY = "landslide.config_key"
COMPLETE = "landslide.complete"
ERROR = "landslide.error"
LOCK = "landslide.lock"
CHECKPOINT_DIR = "landslide.checkpoint_dir"
OWNER = "landslide.owner"
RESUMABLE = "landslide.resumable"
RESUMED_FROM = "landslide.resumed_from"
OUTPUT_DIR = "landslide.output_dir"
#: What a run is: ``sweep`` for a sweep's parent run (:mod:`landslide.sweeps`); training
#: runs do not carry it.
KIND = "landslide.kind"
SWEEP = "sweep"

#: Name of the checkpoint saved after every validation, the one a resume continues from.
LAST_CHECKPOINT = "last.ckpt"

#: Config keys that do not change what a run computes: where it writes, how it reports,
#: whether it resumes. Everything else identifies the setting.
VOLATILE_KEYS: tuple[str, ...] = (
    "paths",
    "resume",
    "force",
    "dry_run",
    "optimized_metric",
    "trainer.default_root_dir",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "callbacks.model_checkpoint.dirpath",
    "logger.tracking_uri",
    "logger.artifact_location",
    "logger.register_as",
    "logger.system_metrics",
    "logger.system_metrics_interval_s",
)


#: Settings added after runs were recorded, left out of the key at the value that trains
#: what those runs trained, so that they still match their setting.
NEUTRAL_VALUES: dict[str, Any] = {
    "data.max_ignored_fraction": 0.0,
    "data.world._target_": "landslide.world.SimulatedWorld",  # the world became injected
    "task.optimizer": {"_target_": "torch.optim.Adam", "_partial_": True},  # a config entry
    "task.channels_last": False,  # issue 15's speed options, off by default
    "compile": False,
    "trainer.precision": "32-true",
    "trainer.num_nodes": 1,  # issue 17's scale-out
}


def config_key(cfg: DictConfig) -> str:
    """A digest of the resolved config that names the setting it trains.

    :data:`VOLATILE_KEYS` are left out, and so are :data:`NEUTRAL_VALUES` at their value:
    the digest is equal for two runs exactly when they train the same setting.
    """
    tree = OmegaConf.to_container(cfg, resolve=True)
    always = object()
    dropped = [(k, always) for k in VOLATILE_KEYS] + list(NEUTRAL_VALUES.items())
    for dotted, neutral in dropped:
        *parents, leaf = dotted.split(".")
        node: Any = tree
        for part in parents:
            node = node.get(part, {}) if isinstance(node, Mapping) else {}
        if isinstance(node, dict) and (neutral is always or node.get(leaf) == neutral):
            node.pop(leaf, None)
    text = json.dumps(tree, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def is_sweep(run: Run) -> bool:
    """Whether ``run`` is a sweep's parent (never a trained model or a result)."""
    return run.data.tags.get(KIND) == SWEEP


def is_complete(run: Run) -> bool:
    """Whether ``run`` finished training, testing and artifact logging.

    Runs from before the completion tag count when they logged every test metric of every
    domain of their config.
    """
    if run.info.status != "FINISHED" or is_sweep(run):
        return False  # a sweep's parent run is neither a model nor a result
    tags = run.data.tags
    if COMPLETE in tags:
        return tags[COMPLETE] == "true"
    if ERROR in tags or LOCK in tags:
        return False
    domains = {key.split(".")[2] for key in run.data.params if key.startswith("data.domains.")}
    metrics = run.data.metrics
    return bool(domains) and all(f"test/{d}/{m}" in metrics for d in domains for m in METRICS)


def one_line(err: BaseException) -> str:
    """``Type: first line of the message``, short enough for a tag."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}"[:500]


class RunInterrupted(BaseException):  # noqa: N818 - a signal, like KeyboardInterrupt
    """SIGINT or SIGTERM arrived. A BaseException, so no ``except Exception`` swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Interrupts:
    """Where a SIGINT or SIGTERM may stop a run.

    Raised at once, a signal can strike in the middle of an MLflow store write (the logger
    writes metrics while training); the interrupted transaction may then keep the SQLite
    store locked, and marking the run KILLED fails. While :attr:`deferred` (the fit and test
    loops, see :class:`landslide.checkpointing.StopAtBatchEnd`), a signal is only noted and
    :meth:`check` raises it at the next batch end, between writes.
    """

    def __init__(self) -> None:
        self.deferred = False
        self.pending: int | None = None

    def receive(self, signum: int, frame: object) -> None:
        """The signal handler."""
        if self.deferred:
            self.pending = signum
            return
        raise RunInterrupted(signum)

    def check(self) -> None:
        """Raise a signal noted while deferred.

        Raises:
            RunInterrupted: if one was.
        """
        if self.pending is not None:
            self.deferred = False
            raise RunInterrupted(self.pending)


@dataclass
class TrainingRun:
    """An MLflow run owned by this process, and where its checkpoints live.

    Attributes:
        client: the store's client.
        run_id: the MLflow run id.
        name: the run name.
        checkpoint_dir: folder of this run's checkpoints, and of nothing else.
        resume_from: the checkpoint to continue from (None for a fresh run).
    """

    client: mlflow.MlflowClient
    run_id: str
    name: str
    checkpoint_dir: Path
    resume_from: Path | None = None
    _lock: FileLock | None = field(default=None, repr=False)

    def complete(self) -> None:
        """Mark the run FINISHED: call only after testing and artifact logging succeeded."""
        self.client.set_tag(self.run_id, COMPLETE, "true")
        self.client.set_terminated(self.run_id, "FINISHED")

    def end(self, status: str, reason: str) -> None:
        """End the run FAILED or KILLED with ``reason`` recorded as a tag."""
        self.client.set_tag(self.run_id, ERROR, reason)
        if status == "KILLED" and (self.checkpoint_dir / LAST_CHECKPOINT).is_file():
            self.client.set_tag(self.run_id, RESUMABLE, "true")
        self.client.set_terminated(self.run_id, status)

    def release(self) -> None:
        """Release the run's lock (once), so another process may resume the run."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def owner() -> str:
    """This process, as recorded in a run's owner tag: ``<host>:<pid>``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _take(lock_path: str) -> FileLock | None:
    """The run's lock if no live process holds it, else None."""
    lock = FileLock(lock_path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return None
    return lock


def start_run(
    client: mlflow.MlflowClient,
    experiment_id: str,
    name: str,
    key: str,
    output_dir: Path,
    checkpoint_root: Path,
    tags: Mapping[str, str] | None = None,
) -> TrainingRun:
    """Create a run owned by this process, checkpointing into ``checkpoint_root/<run id>``.

    The lock (in ``output_dir``) is taken before the run exists, so no other process ever
    sees this run RUNNING without a live owner. ``tags`` are added to the new run (a sweep
    job's parent, :func:`landslide.sweeps.parent_tags`).
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    lock_path = str(output_dir / ".run.lock")
    lock = FileLock(lock_path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise ConfigError(
            f"output folder {output_dir} is in use by another training; give each run its "
            "own folder (hydra.run.dir=...)"
        ) from None
    run = client.create_run(
        experiment_id,
        run_name=name,
        tags={
            CONFIG_KEY: key,
            LOCK: lock_path,
            OWNER: owner(),
            **(tags or {}),
        },
    )
    run_id = run.info.run_id
    checkpoint_dir = checkpoint_root / run_id
    checkpoint_dir.mkdir(parents=True)
    client.set_tag(run_id, CHECKPOINT_DIR, str(checkpoint_dir))
    return TrainingRun(client, run_id, name, checkpoint_dir, None, lock)


def setting_runs(client: mlflow.MlflowClient, experiment_id: str, key: str) -> list[Run]:
    """Every run of the setting ``key``, newest first."""
    return client.search_runs(
        [experiment_id],
        f"tags.`{CONFIG_KEY}` = '{key}'",
        order_by=["attributes.start_time DESC"],
        max_results=1000,
    )


def find_complete(runs: list[Run]) -> Run | None:
    """The newest complete run among ``runs``."""
    return next((run for run in runs if is_complete(run)), None)


def reap_orphans(client: mlflow.MlflowClient, runs: list[Run]) -> None:
    """Mark runs left RUNNING by a dead process (their lock is free) KILLED.

    A run with a last checkpoint is also marked resumable.
    """
    for run in runs:
        lock_path = run.data.tags.get(LOCK)
        if run.info.status != "RUNNING" or lock_path is None:
            continue
        if _is_locked(lock_path):
            continue  # its process is alive
        checkpoint_dir = Path(run.data.tags.get(CHECKPOINT_DIR, "/nonexistent"))
        resumable = (checkpoint_dir / LAST_CHECKPOINT).is_file()
        client.set_tag(
            run.info.run_id,
            ERROR,
            "the training process ended without a status (SIGKILL, out of memory or a crash)",
        )
        if resumable:
            client.set_tag(run.info.run_id, RESUMABLE, "true")
        client.set_terminated(run.info.run_id, "KILLED")
        log.warning(
            "Run %s (%s) was left RUNNING by a process that died; marked KILLED%s",
            run.info.run_name,
            run.info.run_id,
            ", resume it with resume=true" if resumable else "",
        )


def resume_run(client: mlflow.MlflowClient, run: Run) -> TrainingRun | None:
    """Take over an interrupted run, if it has a last checkpoint and no live owner."""
    tags = run.data.tags
    if run.info.status not in ("KILLED", "FAILED", "RUNNING") or CHECKPOINT_DIR not in tags:
        return None
    checkpoint = Path(tags[CHECKPOINT_DIR]) / LAST_CHECKPOINT
    if not checkpoint.is_file():
        return None
    lock = _take(tags[LOCK]) if LOCK in tags else None
    if lock is None:
        return None
    run_id = run.info.run_id
    client.update_run(run_id, status="RUNNING")
    client.set_tag(run_id, OWNER, owner())
    client.set_tag(run_id, RESUMABLE, "false")
    return TrainingRun(client, run_id, run.info.run_name, checkpoint.parent, checkpoint, lock)


def claim_run(
    client: mlflow.MlflowClient,
    experiment_id: str,
    name: str,
    key: str,
    output_dir: Path,
    checkpoint_root: Path,
    resume: bool | str,
    tags: Mapping[str, str] | None = None,
) -> TrainingRun:
    """The run this process trains: an interrupted one to continue, or a new one.

    Args:
        client: the MLflow client.
        experiment_id: the experiment the run belongs to.
        name: the run's name (``<model>-<mix>-seed<seed>``).
        key: the setting's :func:`config_key`.
        output_dir: the Hydra output folder, which holds a new run's lock.
        checkpoint_root: a new run checkpoints into ``checkpoint_root/<run id>``.
        resume: False starts a new run; True continues the newest interrupted run of this
            setting if there is one (else starts a new run); a run id continues that run.
        tags: tags of a new run (a resumed run keeps its own).

    Raises:
        ConfigError: ``resume=<run id>`` names a run that cannot be continued.
    """
    runs = setting_runs(client, experiment_id, key)
    reap_orphans(client, runs)
    if isinstance(resume, str):
        return _resume_by_id(client, experiment_id, key, resume)
    if resume:
        for run in runs:
            taken = resume_run(client, run)
            if taken is not None:
                log.info("Resuming run %s (%s) from %s", name, taken.run_id, taken.resume_from)
                return taken
        log.info("No interrupted run of this setting to resume: starting %s afresh", name)
    else:
        interrupted = [r for r in runs if r.data.tags.get(RESUMABLE) == "true"]
        if interrupted:
            log.warning(
                "An interrupted run of this setting exists (%s); starting a new one. "
                "resume=true would continue it instead",
                interrupted[0].info.run_id,
            )
    return start_run(client, experiment_id, name, key, output_dir, checkpoint_root, tags)


def check_resumable(client: mlflow.MlflowClient, experiment_id: str, key: str, run_id: str) -> Run:
    """The run ``resume=<run_id>`` names, checked before any data is read.

    Raises:
        ConfigError: the run does not exist, trained another setting, is complete, is still
            being trained, or has no last checkpoint.
    """
    try:
        run = client.get_run(run_id)
    except mlflow.exceptions.MlflowException:
        raise ConfigError(
            f"resume={run_id}: no such run in {client.tracking_uri}; use resume=true to "
            "continue the newest interrupted run of this setting"
        ) from None
    name = run.info.run_name
    if run.info.experiment_id != experiment_id or run.data.tags.get(CONFIG_KEY) != key:
        raise ConfigError(
            f"resume={run_id}: run {name} was trained with another config; repeat its "
            "overrides (see its config.yaml artifact) or use resume=true"
        )
    if is_complete(run):
        raise ConfigError(
            f"resume={run_id}: run {name} is already complete; drop resume= to keep it, or "
            "add force=true to train the setting again"
        )
    lock_path = run.data.tags.get(LOCK)
    if run.info.status == "RUNNING" and lock_path and _is_locked(lock_path):
        owner_ = run.data.tags.get(OWNER, "?")
        raise ConfigError(
            f"resume={run_id}: run {name} is still being trained by {owner_}; wait for it "
            "or stop that process first"
        )
    checkpoint_dir = run.data.tags.get(CHECKPOINT_DIR)
    if checkpoint_dir is None or not (Path(checkpoint_dir) / LAST_CHECKPOINT).is_file():
        raise ConfigError(
            f"resume={run_id}: run {name} has no {LAST_CHECKPOINT} (its checkpoint folder "
            f"{checkpoint_dir} is gone, or it never finished an epoch); train it afresh "
            "without resume="
        )
    return run


def _resume_by_id(
    client: mlflow.MlflowClient, experiment_id: str, key: str, run_id: str
) -> TrainingRun:
    run = check_resumable(client, experiment_id, key, run_id)
    taken = resume_run(client, run)
    if taken is None:
        raise ConfigError(
            f"resume={run_id}: another process took run {run.info.run_name} over; wait for "
            "it to end"
        )
    return taken


def _is_locked(lock_path: str) -> bool:
    """Whether a live process holds the lock (a lock whose folder is gone is free)."""
    if not Path(lock_path).parent.is_dir():
        return False
    lock = _take(lock_path)
    if lock is None:
        return True
    lock.release()
    return False


@contextmanager
def supervised(run: TrainingRun) -> Iterator[Interrupts]:
    """End ``run`` honestly whatever happens inside the block.

    SIGINT and SIGTERM raise :class:`RunInterrupted` (the run ends KILLED and the process
    exits 128 + signal), at once or, while the yielded :class:`Interrupts` are deferred, at
    the next batch end; any other exception ends it FAILED with the error as a tag and
    propagates. Completion is the block's own job (:meth:`TrainingRun.complete`).
    """
    signals = (signal.SIGINT, signal.SIGTERM)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {s: signal.getsignal(s) for s in signals} if main_thread else {}
    interrupts = Interrupts()
    for s in previous:
        signal.signal(s, interrupts.receive)
    try:
        yield interrupts
    except BaseException as err:
        # A signal noted while deferred may also surface as Lightning's own SIGTERMException
        # (a SystemExit it raises at its safe points): still an interruption.
        signum = getattr(err, "signum", None) or interrupts.pending
        if signum is None and isinstance(err, KeyboardInterrupt):
            signum = signal.SIGINT
        if signum is None:
            _end_quietly(run, "FAILED", one_line(err))
            raise
        name = signal.Signals(signum).name
        _end_quietly(run, "KILLED", f"interrupted by {name}")
        log.error(
            "Run %s (%s) interrupted by %s and marked KILLED; continue it with resume=true",
            run.name,
            run.run_id,
            name,
        )
        raise SystemExit(128 + signum) from None
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        run.release()


def _end_quietly(run: TrainingRun, status: str, reason: str) -> None:
    # The run's own failure matters more than a failure to record it (e.g. the store went
    # away): log the latter and let the former propagate.
    try:
        run.end(status, reason)
    except Exception as err:  # noqa: BLE001
        log.error("Could not mark run %s %s: %s", run.run_id, status, one_line(err))
