"""Runs are never lost, mixed up or mislabelled: simultaneous starts, kills, resume, failures
after fit, and multiruns that fail part-way, each run through ``train.py`` as a user would."""

import signal
from pathlib import Path

import entry_points
import mlflow
import pytest
import torch
from mlflow.entities import Run

from landslide.checkpointing import RUN_ID_KEY
from landslide.config import compose_config
from landslide.lifecycle import (
    COMPLETE,
    ERROR,
    RESUMABLE,
    Interrupts,
    RunInterrupted,
    is_complete,
    is_sweep,
)
from landslide.report.collect import collect_runs
from landslide.training import train

#: A small world and network: a run takes seconds on a CPU.
SMALL = [
    "trainer=quick",
    "data.world.size=512",
    "data.patch_size=32",
    "model.net.widths=[8,16,32,64]",
]
#: Epochs long enough (a few seconds each) that a kill lands inside training.
LONGER = ["trainer.max_epochs=3", "trainer.limit_train_batches=15", "trainer.limit_val_batches=2"]
TEST_METRICS = [f"test/{d}/{m}" for d in ("iburi", "palu") for m in ("f1", "mcc", "iou")]


def store_uri(folder: Path) -> str:
    (folder / "mlruns").mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder}/mlruns/mlflow.db"


def runs_of(uri: str) -> list[Run]:
    """The training runs of the store (a multirun's parent, the sweep, left out)."""
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("landslide")
    if experiment is None:
        return []
    return [r for r in client.search_runs([experiment.experiment_id]) if not is_sweep(r)]


def train_args(world: Path, *extra: str) -> list[str]:
    return [*SMALL, f"paths.data_dir={world}", *extra]


def logged_checkpoint_run_id(uri: str, run: Run, tmp_path: Path) -> str:
    client = mlflow.MlflowClient(uri)
    path = client.download_artifacts(run.info.run_id, "checkpoints/best.ckpt", str(tmp_path))
    return torch.load(path, map_location="cpu", weights_only=True)[RUN_ID_KEY]


# The race is the same against a store that exists already; that case runs with -m slow.
@pytest.mark.parametrize("store", ["fresh", pytest.param("existing", marks=pytest.mark.slow)])
def test_two_runs_started_together_keep_their_own_weights_and_metrics(
    tmp_path: Path, small_world: Path, store: str
) -> None:
    uri = store_uri(tmp_path)
    if store == "existing":
        mlflow.MlflowClient(uri).create_experiment("other")
    env = {"MLFLOW_TRACKING_URI": uri}
    entries = [
        entry_points.start("train.py", train_args(small_world, f"seed={seed}"), tmp_path, env)
        for seed in (42, 1)
    ]
    for entry in entries:
        assert entry.wait() == 0, entry.output()[-3000:]

    runs = {r.data.params["seed"]: r for r in runs_of(uri)}
    assert sorted(runs) == ["1", "42"]
    for seed, run in runs.items():
        assert run.info.run_name.endswith(f"-seed{seed}")
        assert is_complete(run) and run.data.tags[COMPLETE] == "true"
        assert logged_checkpoint_run_id(uri, run, tmp_path / seed) == run.info.run_id
    assert runs["1"].data.metrics["val/loss"] != runs["42"].data.metrics["val/loss"]
    # Each run wrote into its own output folder.
    assert len(list((tmp_path / "outputs").glob("*/*/checkpoints"))) == 2


def test_sigkill_then_resume_gives_the_uninterrupted_metrics(
    tmp_path: Path, small_world: Path
) -> None:
    args = train_args(small_world, *LONGER)
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    code, output = entry_points.run(
        "train.py", args, straight.mkdir() or straight, {"MLFLOW_TRACKING_URI": store_uri(straight)}
    )
    assert code == 0, output[-3000:]
    expected = runs_of(store_uri(straight))[0].data.metrics

    uri = store_uri(killed.mkdir() or killed)
    entry = entry_points.start("train.py", args, killed, {"MLFLOW_TRACKING_URI": uri})
    entry_points.wait_for(
        lambda: any(killed.glob("outputs/*/*/checkpoints/*/last.ckpt")), what="last.ckpt"
    )
    entry.signal(signal.SIGKILL)
    assert entry.wait() == -signal.SIGKILL
    (orphan,) = runs_of(uri)
    assert orphan.info.status == "RUNNING"

    code, output = entry_points.run(
        "train.py", [*args, "resume=true"], killed, {"MLFLOW_TRACKING_URI": uri}
    )
    assert code == 0, output[-3000:]
    (resumed,) = runs_of(uri)
    assert resumed.info.run_id == orphan.info.run_id
    assert is_complete(resumed)
    for key in TEST_METRICS + ["val/loss"]:
        assert resumed.data.metrics[key] == expected[key], key


def test_sigterm_ends_the_run_killed_with_a_nonzero_exit(tmp_path: Path, small_world: Path) -> None:
    uri = store_uri(tmp_path)
    entry = entry_points.start(
        "train.py", train_args(small_world, *LONGER), tmp_path, {"MLFLOW_TRACKING_URI": uri}
    )
    entry_points.wait_for(
        lambda: any(tmp_path.glob("outputs/*/*/checkpoints/*/last.ckpt")), what="last.ckpt"
    )
    entry.signal(signal.SIGTERM)
    assert entry.wait() == 128 + signal.SIGTERM
    (run,) = runs_of(uri)
    assert run.info.status == "KILLED"
    assert run.data.tags[ERROR] == "interrupted by SIGTERM"
    assert run.data.tags[RESUMABLE] == "true"
    assert "resume=true" in entry.output().splitlines()[-1]


def test_a_failure_after_fit_leaves_no_finished_run(
    tmp_path: Path, small_world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = store_uri(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("landslide.training.log_prediction_figures", fail)
    cfg = compose_config(train_args(small_world), root_dir=tmp_path, output_dir=tmp_path / "out")
    with pytest.raises(OSError, match="disk full"):
        train(cfg)
    (run,) = runs_of(uri)
    assert run.info.status == "FAILED"
    assert run.data.tags[ERROR] == "OSError: disk full"
    assert "test/palu/f1" in run.data.metrics  # tested, but not complete
    assert collect_runs(mlflow.MlflowClient(uri)).empty


def test_a_signal_during_the_loops_waits_for_the_batch_end() -> None:
    """Inside the fit and test loops a signal is only noted (it could strike inside an
    MLflow write and leave the store locked); it is raised at the next batch end."""
    interrupts = Interrupts()
    with pytest.raises(RunInterrupted):
        interrupts.receive(signal.SIGTERM, None)  # outside the loops: at once
    interrupts.deferred = True
    interrupts.receive(signal.SIGTERM, None)  # noted, not raised
    assert interrupts.pending == signal.SIGTERM
    with pytest.raises(RunInterrupted) as err:
        interrupts.check()
    assert err.value.signum == signal.SIGTERM and not interrupts.deferred


def test_a_setting_added_later_keeps_old_runs_matching_at_its_neutral_value(
    tmp_path: Path,
) -> None:
    """data.max_ignored_fraction came after runs were recorded: at 0 (what they trained)
    it leaves the setting's key as it was; another value is another setting."""
    from omegaconf import open_dict

    from landslide.lifecycle import config_key

    cfg = compose_config([], root_dir=tmp_path)
    assert cfg.data.max_ignored_fraction == 0.0
    key = config_key(cfg)
    with open_dict(cfg):
        del cfg.data["max_ignored_fraction"]
        assert config_key(cfg) == key  # as a run recorded before the setting existed
        cfg.data["max_ignored_fraction"] = 0.99
        assert config_key(cfg) != key
