"""End to end: config composition and a training run logged to MLflow (multiruns, kills
and resume: test_lifecycle.py)."""

from pathlib import Path

import mlflow
import pytest
from omegaconf import DictConfig

from landslide.config import compose_config, instantiate_config
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


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return f"sqlite:///{tmp_path}/mlruns/mlflow.db"


@pytest.mark.parametrize("model", ["resu_senet", "resunet"])
def test_every_domain_mix_and_model_composes(tmp_path: Path, model: str) -> None:
    for mix in sorted(p.stem for p in (ROOT / "conf" / "domain_mix").glob("*.yaml")):
        cfg = compose_train(tmp_path, [f"model={model}", f"domain_mix={mix}"])
        assert cfg.model.name == model
        assert sum(cfg.data.mix.values()) == 700, mix
        assert set(cfg.data.domains) == set(DOMAINS)
        assert cfg.domain_mix.name == mix or mix == "ratio"  # ratio names itself by its count
        assert cfg.logger.run_name == f"{model}-{cfg.domain_mix.name}-seed42"


def test_train_logs_params_metrics_and_artifacts(
    tmp_path: Path, tracking: str, small_world: Path
) -> None:
    cfg = compose_train(tmp_path, [*SMALL, f"paths.data_dir={small_world}"])
    metrics = train(cfg)
    for domain in DOMAINS:
        for name in METRICS:
            assert 0.0 <= metrics[f"test/{domain}/{name}"] <= 1.0 or name == "mcc"

    client = mlflow.MlflowClient(tracking)
    runs = client.search_runs([client.get_experiment_by_name("landslide").experiment_id])
    assert len(runs) == 1
    run = runs[0]
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
