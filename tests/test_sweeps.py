"""A multirun is one MLflow parent run with its jobs' runs as children; the readers never take
the parent for a model or a result; ``report.py sweep=<id>`` reads that sweep's runs only."""

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import entry_points
import mlflow
import pytest
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from mlflow.entities import Run
from omegaconf import open_dict, read_write

from landslide.config import compose_config
from landslide.errors import ConfigError
from landslide.lifecycle import KIND, is_complete
from landslide.model_refs import ModelRefError, resolve_run
from landslide.report.collect import collect_runs
from landslide.report.markdown import introduction
from landslide.selection import finished_runs
from landslide.sweeps import (
    NOTE,
    PARENT,
    SWEEP_FILE,
    SWEEP_ID,
    SWEEP_JOB,
    parent_tags,
)

#: A small world and network: a job takes seconds on a CPU.
SMALL = [
    "trainer=quick",
    "data.world.size=512",
    "data.patch_size=32",
    "model.net.widths=[8,16,32,64]",
]
#: Two jobs: the first trains, the second asks for more Iburi samples than its pool holds
#: and fails inside its job (before it creates a run).
SWEPT = "domain_mix.counts.iburi=200,900"


def runs_of(client: mlflow.MlflowClient) -> list[Run]:
    experiment = client.get_experiment_by_name("landslide")
    assert experiment is not None
    return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


def sweeps_of(client: mlflow.MlflowClient) -> list[Run]:
    return [r for r in runs_of(client) if r.data.tags.get(KIND) == "sweep"]


def test_a_multirun_is_a_parent_run_and_a_report_can_read_one_sweep(
    tmp_path: Path, small_world: Path
) -> None:
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    (tmp_path / "mlruns").mkdir()
    env = {"MLFLOW_TRACKING_URI": uri}
    args = ["-m", *SMALL, f"paths.data_dir={small_world}", SWEPT]
    code, output = entry_points.run("train.py", args, tmp_path, env)
    assert code == 1, output[-3000:]  # a job failed: the sweep says so at the end
    # ... in one line, without stopping the other job (it ran first) or a traceback.
    assert "asks for 900 'iburi' samples" in output and "Traceback" not in output
    client = mlflow.MlflowClient(uri)

    (parent,) = sweeps_of(client)
    (child,) = [r for r in runs_of(client) if r.data.tags.get(KIND) != "sweep"]
    # Named after its counts, not after the mix it overrode.
    assert child.info.run_name == "resu_senet-ib200j350-seed42"
    assert "test/palu/f1" in child.data.metrics
    sweep_id = parent.data.tags[SWEEP_ID]
    assert parent.info.run_name == f"sweep-{sweep_id}"
    assert parent.info.status == "FAILED"
    assert parent.data.tags["landslide.error"] == "1 of 2 jobs failed"
    params = parent.data.params
    assert params["sweep.jobs"] == "2"
    assert params["sweep.command"].startswith("train.py -m ")
    assert SWEPT in params["sweep.overrides"].split()
    assert parent.data.metrics == {
        "sweep/jobs": 2,
        "sweep/finished": 1,
        "sweep/skipped": 0,
        "sweep/failed": 1,
        "sweep/not_run": 0,
    }
    note = parent.data.tags[NOTE]
    assert f"`{SWEPT}`" in note
    assert f"| 0 | `domain_mix.counts.iburi=200` | finished | {child.info.run_name} |" in note
    assert "| 1 | `domain_mix.counts.iburi=900` | failed: ConfigError: " in note

    # The child: a complete training run under the parent; the parent: no model, no result.
    assert child.data.tags[PARENT] == parent.info.run_id
    assert child.data.tags[SWEEP_ID] == sweep_id and child.data.tags[SWEEP_JOB] == "0"
    assert is_complete(child) and not is_complete(parent)
    (folder,) = tmp_path.glob("multirun/*/*")
    assert json.loads((folder / SWEEP_FILE).read_text())["run_id"] == parent.info.run_id
    assert [r.info.run_id for r in finished_runs(client, ["landslide"])] == [child.info.run_id]

    # The finished setting again: skipped, so a FINISHED parent with no children, which no
    # reader takes for a model or a result.
    again = [*args[:-1], "domain_mix.counts.iburi=200"]
    code, output = entry_points.run("train.py", again, tmp_path, env)
    assert code == 0, output[-3000:]
    assert f"run {child.info.run_id} already completed this setting" in output
    first, second = sweeps_of(client)
    assert first.info.run_id == parent.info.run_id
    assert second.info.status == "FINISHED" and "landslide.error" not in second.data.tags
    assert second.data.metrics["sweep/skipped"] == 1
    assert second.data.metrics["sweep/finished"] == 0
    assert not is_complete(second)
    assert [r.info.run_id for r in finished_runs(client, ["landslide"])] == [child.info.run_id]
    for ref in (second.info.run_name, f"runs:/{second.info.run_id}"):
        with pytest.raises(ModelRefError, match="complete"):
            resolve_run(client, ref, ["landslide"])  # map.py model=<ref>

    # The report: every complete run, or one sweep's children only.
    assert list(collect_runs(client)["run_id"]) == [child.info.run_id]
    runs = collect_runs(client, sweep=sweep_id)
    assert list(runs["run_id"]) == [child.info.run_id]
    assert f"Sweep: {sweep_id} (run {parent.info.run_id})" in "\n".join(introduction(runs))
    assert list(collect_runs(client, sweep=parent.info.run_id)["run_id"]) == [child.info.run_id]
    assert collect_runs(client, sweep=second.info.run_id).empty  # it trained nothing
    with pytest.raises(ConfigError, match=f"sweep=nope: no such sweep .*: .*{sweep_id}"):
        collect_runs(client, sweep="nope")


@pytest.fixture
def multirun_job(tmp_path: Path) -> Iterator[Path]:
    """Hydra's config as in job 3 of a multirun whose folder is ``tmp_path/sweep``."""
    previous = HydraConfig.instance().cfg
    compose_config([f"hydra.sweep.dir={tmp_path / 'sweep'}"], root_dir=tmp_path)
    hydra_cfg = HydraConfig.instance().cfg
    assert hydra_cfg is not None
    with read_write(hydra_cfg.hydra), open_dict(hydra_cfg):
        hydra_cfg.hydra.mode = RunMode.MULTIRUN
        hydra_cfg.hydra.job.num = 3
    try:
        yield tmp_path / "sweep"
    finally:
        HydraConfig.instance().cfg = previous


def test_a_job_finds_its_parent_in_the_same_store_and_experiment_only(
    multirun_job: Path, tmp_path: Path
) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert parent_tags(uri, "1") == {}  # no parent run written for this sweep
    multirun_job.mkdir()
    record = {"run_id": "abc", "sweep_id": "20260101-120000", "tracking_uri": uri}
    (multirun_job / SWEEP_FILE).write_text(json.dumps({**record, "experiment_id": "1"}))
    expected = {PARENT: "abc", SWEEP_ID: "20260101-120000", SWEEP_JOB: "3"}
    assert parent_tags(uri, "1") == expected
    assert parent_tags(f"sqlite:///{tmp_path}/./mlflow.db", "1") == expected  # same file
    assert parent_tags(uri, "2") == {}  # a run's parent must be in its experiment
    assert parent_tags(f"sqlite:///{tmp_path}/other.db", "1") == {}


def test_outside_a_multirun_a_run_has_no_parent(tmp_path: Path) -> None:
    compose_config([], root_dir=tmp_path)
    assert parent_tags(f"sqlite:///{tmp_path}/mlflow.db", "1") == {}


@pytest.mark.slow
def test_a_sigterm_ends_the_sweep_killed(tmp_path: Path, small_world: Path) -> None:
    """In its own interpreter (the process's exit ends the parent): SIGTERM during a job's
    training ends the job's run and the parent KILLED, exit 143."""
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    (tmp_path / "mlruns").mkdir()
    longer = ["trainer.max_epochs=3", "trainer.limit_train_batches=15"]
    args = ["-m", *SMALL, *longer, f"paths.data_dir={small_world}", "seed=1,2"]
    process = subprocess.Popen(
        [sys.executable, str(entry_points.ROOT / "train.py"), *args],
        cwd=tmp_path,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    entry_points.wait_for(
        lambda: any(tmp_path.glob("multirun/*/*/0-*/checkpoints/*/last.ckpt")), what="last.ckpt"
    )
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 128 + signal.SIGTERM
    client = mlflow.MlflowClient(uri)
    (parent,) = sweeps_of(client)
    assert parent.info.status == "KILLED"
    assert parent.data.metrics["sweep/not_run"] == 2
