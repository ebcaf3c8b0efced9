"""A Hydra multirun as one MLflow parent run, its jobs' runs as the children.

MLflow's convention: a child run carries the tag ``mlflow.parentRunId``; the parent is a
run like any other, in the same experiment, so the UI shows the sweep as one row that
expands. :class:`SweepRun` (a Hydra callback, registered in ``conf/hydra/default.yaml``)
creates the parent when a multirun starts, with the command, the overrides and the number
of jobs, and writes its id into the sweep folder (:data:`SWEEP_FILE`), where every job
finds it whatever the launcher (in-process, joblib's subprocesses, a cluster on a shared
filesystem): :func:`parent_tags` gives a job's new run its parent.

Each job records its outcome in the sweep folder (:data:`JOBS_DIR`). When the last job
ends, or the multirun does, the parent gets the counts as metrics (``sweep/jobs``,
``sweep/finished``, ``sweep/skipped``, ``sweep/failed``, ``sweep/not_run``), a table of the
jobs as its description, and its status: FINISHED when no job failed, FAILED when one did,
KILLED when the sweep was interrupted.

A job is **skipped** when it ended without error and trained no run: no run has it as its
job (``landslide.sweep_job`` of this parent) or its output folder as
``landslide.output_dir`` (a resumed run keeps its first sweep as its parent, but records
the folder of the job that continued it). ``train.py`` skips a setting that already has a
complete run.
"""

import atexit
import json
import logging
import os
import shlex
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import mlflow
from filelock import FileLock
from hydra.conf import HydraConf
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from mlflow.entities import Metric, Param, Run
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NOTE
from omegaconf import DictConfig, OmegaConf

from landslide.config import hydra_config_of
from landslide.distributed import global_rank
from landslide.errors import ConfigError, UserError
from landslide.files import write_atomic
from landslide.lifecycle import ERROR, KIND, OUTPUT_DIR, SWEEP, one_line
from landslide.mlflow_store import get_or_create_experiment, open_store, sqlite_path

log = logging.getLogger(__name__)

#: MLflow's tag naming a run's parent.
PARENT = MLFLOW_PARENT_RUN_ID
#: MLflow's tag holding a run's description (Markdown), shown in the UI.
NOTE = MLFLOW_RUN_NOTE
#: A sweep's short id (``YYYYmmdd-HHMMSS`` of its start), on the parent and its children.
SWEEP_ID = "landslide.sweep_id"
#: A child's job number in its sweep (``hydra.job.num``).
SWEEP_JOB = "landslide.sweep_job"
#: The sweep folder, on the parent.
SWEEP_DIR = "landslide.sweep_dir"

#: In the sweep folder: the parent run, for the jobs.
SWEEP_FILE = ".mlflow_sweep.json"
#: In the sweep folder: one ``<job number>.json`` per job, its outcome.
JOBS_DIR = ".mlflow_sweep_jobs"
#: In the sweep folder: the parent's final status, once it ended.
ENDED_FILE = ".mlflow_sweep_ended"

_BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
#: MLflow's limit on a param value.
_PARAM_CHARS = 6000


@dataclass(frozen=True)
class Sweep:
    """The parent run of a multirun, as written into its folder for the jobs.

    Attributes:
        run_id: the parent's MLflow run id.
        sweep_id: the sweep's short id (:data:`SWEEP_ID`).
        tracking_uri: the store holding the parent.
        experiment_id: the parent's experiment (its children must be in it too).
        overrides: the multirun's command-line overrides.
        jobs: the number of jobs the sweeper launches, None when unknown.
    """

    run_id: str
    sweep_id: str
    tracking_uri: str
    experiment_id: str
    overrides: tuple[str, ...] = ()
    jobs: int | None = None


def parent_tags(tracking_uri: str, experiment_id: str) -> dict[str, str]:
    """Tags that make a new run of this Hydra job a child of its sweep's parent run.

    Args:
        tracking_uri: the store the run is created in.
        experiment_id: the experiment the run is created in.

    Returns:
        ``mlflow.parentRunId``, :data:`SWEEP_ID` and :data:`SWEEP_JOB` when this is a job of
        a multirun whose parent is in the same store and experiment; else empty.
    """
    if not HydraConfig.initialized():
        return {}
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return {}
    sweep = read_sweep(sweep_dir(hydra_cfg))
    if sweep is None:
        return {}
    if sweep.experiment_id != experiment_id or not same_store(sweep.tracking_uri, tracking_uri):
        log.warning(
            "This job logs to another store or experiment than its sweep's parent run %s: "
            "its run is not grouped under the sweep",
            sweep.run_id,
        )
        return {}
    return {PARENT: sweep.run_id, SWEEP_ID: sweep.sweep_id, SWEEP_JOB: str(hydra_cfg.job.num)}


def find_sweep(client: mlflow.MlflowClient, experiment_ids: Sequence[str], sweep: str) -> Run:
    """The parent run of a sweep, named by its id (:data:`SWEEP_ID`), run name or run id.

    Raises:
        ConfigError: no sweep, or several, of the experiments ``experiment_ids`` match.
    """
    parents = client.search_runs(
        list(experiment_ids),
        f"tags.`{KIND}` = '{SWEEP}'",
        order_by=["attributes.start_time DESC"],
        max_results=50_000,
    )
    matches = [
        run
        for run in parents
        if sweep in (run.info.run_id, run.info.run_name, run.data.tags.get(SWEEP_ID))
    ]
    if not matches:
        known = ", ".join(run.data.tags.get(SWEEP_ID, run.info.run_id) for run in parents[:10])
        raise ConfigError(
            f"sweep={sweep}: no such sweep in {client.tracking_uri}; "
            + (
                f"name one of the sweeps recorded there (newest first): {known}"
                if parents
                else "no sweep is recorded there (python train.py -m ...)"
            )
        )
    if len(matches) > 1:
        ids = ", ".join(run.info.run_id for run in matches)
        raise ConfigError(
            f"sweep={sweep}: {len(matches)} sweeps have this id; name one by its parent run id "
            f"({ids})"
        )
    return matches[0]


def sweep_dir(hydra_cfg: DictConfig | HydraConf) -> Path:
    """The absolute sweep folder of a multirun's ``hydra`` config node."""
    folder = Path(str(hydra_cfg.sweep.dir))
    cwd = hydra_cfg.runtime.cwd
    return folder if folder.is_absolute() else Path(cwd or os.getcwd()) / folder


def read_sweep(folder: Path) -> Sweep | None:
    """The parent run written into a sweep folder; None if there is none (or unreadable)."""
    try:
        record = json.loads((folder / SWEEP_FILE).read_text())
        record["overrides"] = tuple(record.get("overrides", ()))
        return Sweep(**record)
    except (OSError, ValueError, TypeError):
        return None


def same_store(a: str, b: str) -> bool:
    """Whether two tracking URIs name the same store (SQLite: the same database file)."""
    if a.startswith("sqlite:") and b.startswith("sqlite:"):
        return sqlite_path(a).resolve() == sqlite_path(b).resolve()
    return a.rstrip("/") == b.rstrip("/")


def planned_jobs(config: DictConfig) -> int | None:
    """How many jobs Hydra's basic sweeper launches for ``config`` (None: unknown)."""
    jobs = planned_overrides(config)
    return None if jobs is None else len(jobs)


def planned_overrides(config: DictConfig) -> list[list[str]] | None:
    """The overrides of each job Hydra's basic sweeper launches for ``config``.

    None for other sweepers, or overrides it cannot expand alone (e.g. ``glob(...)``).
    """
    if OmegaConf.select(config, "hydra.sweeper._target_") != _BASIC_SWEEPER:
        return None
    params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    arguments = [f"{k}={v}" for k, v in params.items()]
    arguments += list(OmegaConf.select(config, "hydra.overrides.task") or [])
    try:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

        parsed = OverridesParser.create().parse_overrides(arguments)
        batches = BasicSweeper.split_arguments(parsed, None)
    except Exception:  # noqa: BLE001 - the plan is a convenience
        return None
    return [list(job) for batch in batches for job in batch]


class SweepRun(Callback):
    """Hydra callback: one MLflow parent run per multirun (see the module's docstring).

    Acts only for apps whose config has ``logger.experiment_name`` and
    ``logger.tracking_uri`` (``train.py``); other multiruns are left alone.
    """

    def __init__(self) -> None:
        self.folder: str | None = None
        self.sweep: Sweep | None = None
        self._signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        # Pickled to joblib's or a cluster's workers: the signal handlers stay here.
        return {**self.__dict__, "_previous": {}}

    # --- the sweep's process -------------------------------------------------------------

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Create the parent run and write it into the sweep folder."""
        if not isinstance(OmegaConf.select(config, "logger.experiment_name"), str):
            return
        if OmegaConf.select(config, "dry_run", default=False):
            return  # nothing runs (landslide.launch_plan)
        with hydra_config_of(config):  # ${hydra:runtime.cwd} in the paths
            uri = str(config.logger.tracking_uri)
            experiment_name = str(config.logger.experiment_name)
            artifact_location = OmegaConf.select(config, "logger.artifact_location")
            mlruns_dir = OmegaConf.select(config, "paths.mlruns_dir", default=None)
            folder = sweep_dir(config.hydra)
        if uri.startswith("sqlite:") and mlruns_dir and sqlite_path(uri).parent == Path(mlruns_dir):
            Path(mlruns_dir).mkdir(parents=True, exist_ok=True)  # the default store
        try:
            client = open_store(uri)
            experiment_id = get_or_create_experiment(client, experiment_name, artifact_location)
        except UserError as err:
            # Raised as SystemExit: Hydra would turn any Exception into a warning and train
            # every job into a store that cannot be used.
            raise SystemExit(f"{Path(sys.argv[0]).name}: {err}") from None

        started = datetime.now()
        sweep_id = started.strftime("%Y%m%d-%H%M%S")
        overrides = tuple(str(o) for o in config.hydra.overrides.task)
        sweeper_params = dict(OmegaConf.select(config, "hydra.sweeper.params") or {})
        jobs = planned_jobs(config)
        command = shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])
        run = client.create_run(
            experiment_id,
            run_name=f"sweep-{sweep_id}",
            start_time=int(started.timestamp() * 1000),
            tags={
                KIND: SWEEP,
                SWEEP_ID: sweep_id,
                SWEEP_DIR: str(folder),
                NOTE: _description(sweep_id, command, overrides, sweeper_params, folder),
            },
        )
        params = {
            "sweep.command": command,
            "sweep.overrides": " ".join(overrides) or "(none)",
            "sweep.dir": str(folder),
            "sweep.launcher": str(OmegaConf.select(config, "hydra.launcher._target_")),
            "sweep.jobs": str(jobs) if jobs is not None else "unknown",
        }
        if sweeper_params:
            params["sweep.params"] = " ".join(f"{k}={v}" for k, v in sweeper_params.items())
        client.log_batch(
            run.info.run_id,
            params=[Param(k, v[:_PARAM_CHARS]) for k, v in params.items()],
        )
        self.sweep = Sweep(run.info.run_id, sweep_id, uri, experiment_id, overrides, jobs)
        self.folder = str(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / SWEEP_FILE, json.dumps(asdict(self.sweep)))
        atexit.register(self._at_exit)
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._previous[s] = signal.getsignal(s)
                signal.signal(s, self._receive)
        log.info(
            "Sweep %s: %s jobs under MLflow run %s (%s)",
            sweep_id,
            jobs if jobs is not None else "?",
            run.info.run_name,
            run.info.run_id,
        )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """End the parent once every job ran.

        Hydra skips this when a job failed: the last job's end, or the process's exit, ends
        the parent then.
        """
        if self.sweep is None or self.folder is None:
            return
        self._stop_watching()
        if not (Path(self.folder) / ENDED_FILE).exists():  # else the last job ended it
            self._finish(interrupted=False)

    def _receive(self, signum: int, frame: object) -> None:
        # Outside a job (a job's run installs its own handlers): stop the sweep as a run
        # does, exit 128 + the signal; the exit ends the parent KILLED.
        self._signal = signum
        raise SystemExit(128 + signum)

    def _at_exit(self) -> None:
        # The sweep stopped without Hydra's end: a job failed (Hydra raises once the
        # batch is done) or the process was interrupted.
        if self.folder is not None and not (Path(self.folder) / ENDED_FILE).exists():
            self._finish(interrupted=self._signal is not None)

    def _stop_watching(self) -> None:
        atexit.unregister(self._at_exit)
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

    # --- a job's process -----------------------------------------------------------------

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Record the job as running (a job that never ends was interrupted)."""
        folder = self._job_folder(config)
        if folder is not None and global_rank() == 0:  # a job's other SLURM tasks: no record
            write_atomic(
                folder / JOBS_DIR / f"{config.hydra.job.num}.json", json.dumps(_job(config))
            )

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        """Record the job's outcome; the last job to end ends the parent."""
        folder = self._job_folder(config)
        if folder is None or self.sweep is None or global_rank() > 0:
            return
        record = _job(config)
        record["status"] = job_return.status.name
        if job_return.status == JobStatus.FAILED:
            record["error"] = one_line(job_return._return_value)  # the exception (no getter)
        with FileLock(str(folder / f"{JOBS_DIR}.lock"), timeout=300):
            write_atomic(folder / JOBS_DIR / f"{config.hydra.job.num}.json", json.dumps(record))
            ended = [r for r in _read_jobs(folder) if r["status"] != "RUNNING"]
            if self.sweep.jobs is not None and len(ended) >= self.sweep.jobs:
                if not (folder / ENDED_FILE).exists():
                    self._finish(interrupted=False)

    def _job_folder(self, config: DictConfig) -> Path | None:
        if self.sweep is None:
            return None
        folder = Path(self.folder) if self.folder else sweep_dir(config.hydra)
        return folder if (folder / SWEEP_FILE).is_file() else None

    # --- ending the parent ---------------------------------------------------------------

    def _finish(self, interrupted: bool) -> None:
        """Count the jobs, describe them on the parent and end it."""
        assert self.sweep is not None and self.folder is not None
        sweep, folder = self.sweep, Path(self.folder)
        try:
            client = open_store(sweep.tracking_uri)
            jobs = _read_jobs(folder)
            runs = _job_runs(client, sweep, folder)
            outcomes = [_outcome(job, runs) for job in jobs]
            status, counts, reason = _summary(sweep, outcomes, interrupted)
            now = int(datetime.now().timestamp() * 1000)
            client.log_batch(
                sweep.run_id,
                metrics=[Metric(f"sweep/{k}", v, now, 0) for k, v in counts.items()],
            )
            run = client.get_run(sweep.run_id)
            table = _jobs_markdown(sweep, jobs, outcomes, runs)
            note = run.data.tags.get(NOTE, "").split("\n\n## Jobs")[0]
            client.set_tag(sweep.run_id, NOTE, f"{note}\n\n## Jobs\n\n{table}")
            if reason:
                client.set_tag(sweep.run_id, ERROR, reason)
            client.set_terminated(sweep.run_id, status)
            (folder / ENDED_FILE).write_text(status)
            log.info(
                "Sweep %s ended %s: %s",
                sweep.sweep_id,
                status,
                ", ".join(f"{v} {k}" for k, v in counts.items()),
            )
        except Exception as err:  # noqa: BLE001 - the jobs' own outcome matters more
            log.error("Could not end the sweep's MLflow run %s: %s", sweep.run_id, one_line(err))


def _description(
    sweep_id: str,
    command: str,
    overrides: Sequence[str],
    params: Mapping[str, Any],
    folder: Path,
) -> str:
    lines = [
        f"# Sweep {sweep_id}",
        "",
        f"    {command}",
        "",
        f"Folder: `{folder}`",
        "",
        "Overrides: " + (" ".join(f"`{o}`" for o in overrides) or "none"),
    ]
    if params:
        lines += ["", "Sweeper params: " + " ".join(f"`{k}={v}`" for k, v in params.items())]
    return "\n".join(lines)


def _job(config: DictConfig) -> dict[str, Any]:
    return {
        "num": int(config.hydra.job.num),
        "overrides": [str(o) for o in config.hydra.overrides.task],
        "output_dir": str(config.hydra.runtime.output_dir),
        "status": "RUNNING",
    }


def _read_jobs(folder: Path) -> list[dict[str, Any]]:
    jobs = []
    for path in (folder / JOBS_DIR).glob("*.json"):
        try:
            jobs.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return sorted(jobs, key=lambda job: job["num"])


def _job_runs(client: mlflow.MlflowClient, sweep: Sweep, folder: Path) -> dict[str, Run]:
    """The runs the sweep's jobs trained, by ``job:<num>`` and by output folder."""
    found: dict[str, Run] = {}
    for run in client.search_runs(
        [sweep.experiment_id], f"tags.`{PARENT}` = '{sweep.run_id}'", max_results=50_000
    ):
        if SWEEP_JOB in run.data.tags:
            found[f"job:{run.data.tags[SWEEP_JOB]}"] = run
    if "'" not in str(folder):
        for run in client.search_runs(
            [sweep.experiment_id],
            f"tags.`{OUTPUT_DIR}` LIKE '{folder}%'",
            max_results=50_000,
        ):
            found.setdefault(run.data.tags[OUTPUT_DIR], run)
    return found


def _outcome(job: Mapping[str, Any], runs: Mapping[str, Run]) -> str:
    """``finished``, ``skipped``, ``failed`` or ``interrupted``."""
    if job["status"] == "RUNNING":
        return "interrupted"
    if job["status"] != "COMPLETED":
        return "failed"
    trained = f"job:{job['num']}" in runs or job["output_dir"] in runs
    return "finished" if trained else "skipped"


def _summary(
    sweep: Sweep, outcomes: Sequence[str], interrupted: bool
) -> tuple[str, dict[str, int], str | None]:
    """The parent's status, its counts and the reason for a FAILED or KILLED status."""
    counts = {k: outcomes.count(k) for k in ("finished", "skipped", "failed")}
    total = max(sweep.jobs or 0, len(outcomes))
    not_run = total - sum(counts.values())
    counts = {"jobs": total, **counts, "not_run": not_run}
    interrupted = interrupted or "interrupted" in outcomes
    if interrupted:
        return "KILLED", counts, f"interrupted with {not_run} of {total} jobs not run to the end"
    if counts["failed"]:
        return "FAILED", counts, f"{counts['failed']} of {total} jobs failed"
    if not_run:
        return "KILLED", counts, f"the sweep stopped with {not_run} of {total} jobs not run"
    return "FINISHED", counts, None


def _jobs_markdown(
    sweep: Sweep,
    jobs: Sequence[Mapping[str, Any]],
    outcomes: Sequence[str],
    runs: Mapping[str, Run],
) -> str:
    common = set(sweep.overrides)
    rows = ["| job | overrides | status | run |", "| --- | --- | --- | --- |"]
    for job, outcome in zip(jobs, outcomes, strict=True):
        own = [o for o in job["overrides"] if o not in common]
        run = runs.get(f"job:{job['num']}") or runs.get(job["output_dir"])
        status = outcome + (f": {job['error']}" if job.get("error") else "")
        cells = [
            str(job["num"]),
            " ".join(f"`{o}`" for o in own) or "—",
            status,
            run.info.run_name if run is not None else "—",
        ]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)
