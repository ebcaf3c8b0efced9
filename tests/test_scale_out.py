"""Scaling out: training on two processes (Lightning's DDP over gloo, on the CPU) is one MLflow
run and one output folder, with the test metrics a single process computes from the same
weights on the same test sets; a SLURM sweep's dry run prints the sbatch script it would
submit; the process rank is read from the launcher."""

import subprocess
from pathlib import Path

import lightning as L
import mlflow
import pytest
from entry_points import run
from omegaconf import OmegaConf

from landslide.config import compose_config, instantiate_config
from landslide.distributed import HANDOFF_ENV, global_rank, started_by_lightning
from landslide.errors import ConfigError
from landslide.lifecycle import is_complete, is_sweep
from landslide.metrics import METRICS
from landslide.schema import validate_train_config
from landslide.task import SegmentationTask

DOMAINS = ("iburi", "jiuzhaigou", "palu", "luding")
#: A small world and network; test sets of 60 patches per known domain and 61 per unknown
#: one: 12 and 13 batches of 5, the last one short, so a sampler that padded a process's
#: share with repeated samples, or dealt the alternating positive and negative patches out
#: in turn, would change the metrics or the batch dice loss.
SMALL_DDP = [
    "trainer=ddp",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "data.world.size=512",
    "data.patch_size=32",
    "data.pool_size=200",
    "data.unknown_pool_size=61",
    "domain_mix.counts.iburi=50",
    "domain_mix.counts.jiuzhaigou=50",
    "model.net.widths=[8,16,32,64]",
    # The barely trained network's probabilities lie around 0.42: predicted landslide and
    # stable pixels both occur, so precision, recall and the rest are informative.
    "task.threshold=0.425",
]


def test_ddp_is_one_run_and_one_folder_with_the_single_process_test_metrics(
    tmp_path: Path, small_world: Path
) -> None:
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    (tmp_path / "mlruns").mkdir()
    env = {"MLFLOW_TRACKING_URI": uri}
    # A multirun of two DDP jobs in one process: left to Hydra, each extra rank would run the
    # whole sweep again; left to Lightning, the second job would reuse the first's ranks.
    argv = ["-m", *SMALL_DDP, f"paths.data_dir={small_world}", "seed=1,2"]
    code, output = run("train.py", argv, tmp_path, env=env)
    assert code == 0, output

    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("landslide")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time"])
    trainings = [r for r in runs if not is_sweep(r)]
    assert len(trainings) == 2 and len(runs) == 3  # one run per training, one sweep parent
    assert all(r.info.status == "FINISHED" and is_complete(r) for r in trainings)
    training = trainings[0]
    assert training.data.params["trainer.strategy._target_"].endswith("DDPStrategy")
    # One output folder a training: the job's, with one Hydra log; the other rank wrote none.
    assert not (tmp_path / "outputs").exists()
    (sweep,) = (tmp_path / "multirun").glob("*/*")
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert [p.name[:2] for p in jobs] == ["0-", "1-"]
    assert all([log.name for log in job.glob("*.log")] == ["train.log"] for job in jobs)

    # The same weights tested by one process on the same test sets.
    config = OmegaConf.load(
        client.download_artifacts(training.info.run_id, "config.yaml", str(tmp_path))
    )
    checkpoint = client.download_artifacts(
        training.info.run_id, "checkpoints/best.ckpt", str(tmp_path)
    )
    datamodule = instantiate_config(config.data)
    task = SegmentationTask.load_from_checkpoint(checkpoint, weights_only=True)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    trainer.test(task, datamodule=datamodule, verbose=False)
    single = {k: float(v) for k, v in trainer.callback_metrics.items()}
    logged = training.data.metrics
    for domain in DOMAINS:
        names = [f"test/{domain}/{m}" for m in (*METRICS, "loss")]
        assert [logged[n] for n in names] == pytest.approx([single[n] for n in names], abs=1e-6)
        assert 0 < logged[f"test/{domain}/precision"] < 1  # informative, not all one class
        assert 0 < logged[f"test/{domain}/recall"] < 1


def test_a_rank_is_read_from_the_launcher_and_torchrun_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (HANDOFF_ENV, "LOCAL_RANK", "RANK", "SLURM_NTASKS", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    assert global_rank() == 0 and not started_by_lightning()
    monkeypatch.setenv("SLURM_NTASKS", "4")
    monkeypatch.setenv("SLURM_PROCID", "3")
    assert global_rank() == 3 and not started_by_lightning()
    monkeypatch.setenv("SLURM_NTASKS", "1")
    monkeypatch.setenv("SLURM_PROCID", "0")
    assert global_rank() == 0
    monkeypatch.setenv(HANDOFF_ENV, "/x/.ddp/rank0-1.json")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert global_rank() == 1 and started_by_lightning()
    monkeypatch.delenv(HANDOFF_ENV)
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(ConfigError, match="torchrun"):
        global_rank()


def test_a_slurm_sweep_dry_run_prints_a_valid_sbatch_array_and_runs_nothing(
    tmp_path: Path,
) -> None:
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    argv = [
        "-m",
        "hydra/launcher=slurm",
        "dry_run=true",
        "trainer=ddp_gpu",  # composes without a GPU: nothing runs
        "trainer.num_nodes=2",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.account=geohazard_lab",
        "hydra.launcher.qos=high",
        "hydra.launcher.timeout_min=90",
        "hydra.launcher.mem_gb=48",
        "hydra.launcher.array_parallelism=3",
        "hydra.launcher.setup=[module load cuda/12.4]",
        "model=resunet,resu_senet",
        "seed=1,2",
    ]
    code, output = run("train.py", argv, tmp_path, env={"MLFLOW_TRACKING_URI": uri})
    assert code == 0, output
    jobs = [line for line in output.splitlines() if line.startswith("#   ")]
    assert len(jobs) == 4 and "model=resu_senet seed=2" in jobs[-1]
    script = output[output.index("#!/bin/bash") :]
    flags = dict(
        line.removeprefix("#SBATCH --").split("=", 1)
        for line in script.splitlines()
        if line.startswith("#SBATCH --") and "=" in line
    )
    assert {k: flags[k] for k in ("partition", "account", "qos", "time", "mem")} == {
        "partition": "gpu",
        "account": "geohazard_lab",
        "qos": "high",
        "time": "90",
        "mem": "48GB",
    }
    # One task per GPU on each of the two nodes, as Lightning's SLURM support wants.
    assert (flags["nodes"], flags["ntasks-per-node"], flags["gpus-per-node"]) == ("2", "2", "2")
    assert flags["array"] == "0-3%3"  # the four jobs, at most three at once
    assert "module load cuda/12.4" in script and "-m submitit.core._submit" in script
    checked = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr  # a valid shell script
    # Nothing ran: no store, no sweep folder, no job.
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".log")) == []


def test_a_multi_process_job_under_joblib_is_refused_in_one_line(tmp_path: Path) -> None:
    """joblib runs each job in a worker process, from which Lightning cannot start ranks."""
    cfg = compose_config(["trainer=ddp", "hydra/launcher=joblib"], root_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"^trainer.devices=2: hydra/launcher=joblib runs"):
        validate_train_config(cfg)
    validate_train_config(compose_config(["hydra/launcher=joblib"], root_dir=tmp_path))
    validate_train_config(compose_config(["trainer=ddp"], root_dir=tmp_path))


def test_joblib_jobs_spread_over_the_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Job k of a joblib sweep takes GPU k mod count; one GPU, CPU jobs and other launchers
    are left to Lightning."""
    import torch
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import read_write

    from landslide.distributed import joblib_device

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    compose_config(["hydra/launcher=joblib"], root_dir=tmp_path)
    hydra = HydraConfig.get()
    for job, gpu in ((0, 0), (1, 1), (2, 0), (5, 1)):
        with read_write(hydra):
            hydra.job.num = job
        assert joblib_device("gpu", 1) == [gpu]
    assert joblib_device("auto", 1) == [1]
    assert joblib_device("cpu", 1) is None and joblib_device("gpu", 2) is None
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert joblib_device("gpu", 1) is None
    compose_config([], root_dir=tmp_path)  # the basic launcher
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert joblib_device("gpu", 1) is None
