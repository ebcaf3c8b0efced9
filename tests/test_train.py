"""End to end: config composition and a training run logged to MLflow (multiruns, kills
and resume: test_lifecycle.py)."""

from pathlib import Path
from typing import NamedTuple

import mlflow
import pytest
from mlflow.entities import Run
from omegaconf import DictConfig, OmegaConf

from landslide.config import compose_config, instantiate_config
from landslide.lifecycle import COMPLETE
from landslide.training import train
from landslide.world import GENERATOR_VERSION

ROOT = Path(__file__).resolve().parents[1]
DOMAINS = ("iburi", "jiuzhaigou", "palu", "luding")
METRICS = ("precision", "recall", "f1", "mcc", "iou")

#: A small world and small network so a run takes seconds on a CPU.
SMALL = [
    "trainer=quick",
    "data.world.size=512",
    "data.patch_size=32",
    "model.net.widths=[8,16,32,64]",
]


def compose_train(tmp_path: Path, overrides: list[str]) -> DictConfig:
    """Compose conf/train.yaml as train.py would, started in tmp_path."""
    return compose_config(overrides, root_dir=tmp_path, output_dir=tmp_path / "output")


def quick_budget() -> list[str]:
    """Overrides that give any trainer profile conf/trainer/quick.yaml's budget (its keys,
    read from the file, so the two cannot drift apart)."""
    quick = OmegaConf.load(ROOT / "conf" / "trainer" / "quick.yaml")
    return [f"++trainer.{k}={v}" for k, v in quick.items() if k != "defaults"]


#: trainer=gpu through the same code path on the CPU, at the quick budget.
GPU_ON_CPU = ["trainer=gpu", "trainer.accelerator=cpu", *quick_budget()]


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return f"sqlite:///{tmp_path}/mlruns/mlflow.db"


class SmallRun(NamedTuple):
    """A finished run of the small setting, and the MLflow store it was logged to."""

    tracking: str
    metrics: dict[str, float]
    run: Run


def train_small(root: Path, overrides: list[str], small_world: Path) -> SmallRun:
    """Train the small setting started in ``root`` (its own MLflow store, root/mlruns) and
    return the one run it logged."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        cfg = compose_train(root, [*SMALL, *overrides, f"paths.data_dir={small_world}"])
        metrics = train(cfg)
    tracking = f"sqlite:///{root}/mlruns/mlflow.db"
    client = mlflow.MlflowClient(tracking)
    runs = client.search_runs([client.get_experiment_by_name("landslide").experiment_id])
    assert len(runs) == 1
    return SmallRun(tracking, metrics, runs[0])


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory, small_world: Path) -> SmallRun:
    """One ``trainer=quick`` run, shared by the tests that read it."""
    return train_small(tmp_path_factory.mktemp("quick_run"), [], small_world)


@pytest.mark.parametrize("model", ["resu_senet", "resunet"])
def test_every_domain_mix_and_model_composes(tmp_path: Path, model: str) -> None:
    for mix in sorted(p.stem for p in (ROOT / "conf" / "domain_mix").glob("*.yaml")):
        cfg = compose_train(tmp_path, [f"model={model}", f"domain_mix={mix}"])
        assert cfg.model.name == model
        assert sum(cfg.data.mix.values()) == 700, mix
        assert set(cfg.data.domains) == set(DOMAINS)
        assert cfg.domain_mix.name == mix or mix == "ratio"  # ratio names itself by its count
        assert cfg.logger.run_name == f"{model}-{cfg.domain_mix.name}-seed42"


def test_train_logs_params_metrics_and_artifacts(quick_run: SmallRun) -> None:
    tracking, metrics, run = quick_run
    for domain in DOMAINS:
        for name in METRICS:
            assert 0.0 <= metrics[f"test/{domain}/{name}"] <= 1.0 or name == "mcc"

    client = mlflow.MlflowClient(tracking)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "resu_senet-ib350j350-seed42"
    assert run.data.params["model.name"] == "resu_senet"
    assert run.data.params["domain_mix.counts.iburi"] == "350"
    assert run.data.params["task.lr"] == "0.0001"
    assert run.data.params["data.world.generator_version"] == str(GENERATOR_VERSION)
    for key in ["train/loss", "val/loss"] + [f"test/{d}/{m}" for d in DOMAINS for m in METRICS]:
        assert key in run.data.metrics, key
    # train() returns the kept checkpoint's validation loss: the lowest one logged.
    history = client.get_metric_history(run.info.run_id, "val/loss")
    assert metrics["val/loss"] == pytest.approx(min(m.value for m in history))
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "checkpoints", "figures"} <= artifacts
    figures = {a.path for a in client.list_artifacts(run.info.run_id, "figures")}
    assert figures == {f"figures/test_{d}.png" for d in DOMAINS}
    ckpt = client.list_artifacts(run.info.run_id, "checkpoints")
    assert [a.path for a in ckpt] == ["checkpoints/best.ckpt"]


def artifact_listing(client: mlflow.MlflowClient, run_id: str) -> dict[str, set[str]]:
    """A run's artifact names at the top level, in figures/ and in checkpoints/."""
    return {
        folder: {Path(a.path).name for a in client.list_artifacts(run_id, folder or None)}
        for folder in ("", "figures", "checkpoints")
    }


def test_gpu_profile_on_cpu_logs_what_a_quick_run_logs(
    tmp_path: Path, small_world: Path, quick_run: SmallRun
) -> None:
    """``trainer=gpu trainer.accelerator=cpu`` at the quick budget runs end to end and its
    MLflow run looks like the ``trainer=quick`` run's: the same params (only the paths of its
    own folder differ), metrics, artifacts and completion."""
    gpu = train_small(tmp_path, GPU_ON_CPU, small_world)
    quick, other = quick_run.run, gpu.run

    assert set(other.data.params) ^ set(quick.data.params) == set()
    differ = {k for k, v in other.data.params.items() if quick.data.params[k] != v}
    # Each run was started in its own folder with its own store; nothing else may differ,
    # the trainer's settings included (both run on the CPU at the same budget).
    assert differ == {
        "paths.root_dir",
        "paths.mlruns_dir",
        "paths.output_dir",
        "trainer.default_root_dir",
        "callbacks.model_checkpoint.dirpath",
        "logger.tracking_uri",
        "logger.artifact_location",
    }
    assert set(other.data.metrics) ^ set(quick.data.metrics) == set()
    assert set(other.data.tags) ^ set(quick.data.tags) == set()
    listings = [
        artifact_listing(mlflow.MlflowClient(r.tracking), r.run.info.run_id)
        for r in (quick_run, gpu)
    ]
    assert listings[0] == listings[1]
    assert listings[0]["checkpoints"] == {"best.ckpt"}
    for run in (quick, other):
        assert run.info.status == "FINISHED"
        assert run.data.tags[COMPLETE] == "true"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+domain_mix.counts.atlantis=10", "domain_mix names domain 'atlantis'"),
        ("domain_mix.counts.iburi=800", "asks for 800 'iburi' samples but its training pool"),
        ("+domain_mix.counts.palu=10", "'palu', an unknown \\(test-only\\) domain"),
    ],
)
def test_bad_domain_mix_config_fails_before_training(
    tmp_path: Path, override: str, message: str
) -> None:
    cfg = compose_train(tmp_path, [override])
    with pytest.raises(ValueError, match=message):
        instantiate_config(cfg.data)


def test_short_training_beats_a_constant_predictor(
    tmp_path: Path, tracking: str, small_world: Path
) -> None:
    """A real learning check: after a short run on the default world, F1 on the Iburi test
    set must clearly beat the best constant predictor (everything a landslide)."""
    cfg = compose_train(
        tmp_path,
        [
            "trainer=quick",
            "trainer.max_epochs=4",
            "trainer.limit_train_batches=40",
            "trainer.limit_val_batches=10",
            "trainer.limit_test_batches=null",
            "domain_mix=ib700",
            "data.world.size=512",
            f"paths.data_dir={small_world}",
            "data.patch_size=32",
            "data.batch_size=8",
            "model.net.widths=[8,16,32,64]",
            "task.lr=0.003",
        ],
    )
    metrics = train(cfg)

    from hydra.utils import instantiate

    datamodule = instantiate(cfg.data)
    datamodule.setup("test")
    iburi = datamodule.test_dataloader()[datamodule.test_domains.index("iburi")]
    masks = [batch["mask"] for batch in iburi]
    share = float(sum(m.sum() for m in masks) / sum(m.numel() for m in masks))
    constant_f1 = 2 * share / (1 + share)
    assert 0.0 < constant_f1 < 0.35
    assert metrics["test/iburi/f1"] > constant_f1 + 0.2, (metrics["test/iburi/f1"], constant_f1)
    assert metrics["test/iburi/mcc"] > 0.3
