"""Model selection by MMD over runs in an MLflow store the test creates."""

from pathlib import Path

import mlflow
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict

from landslide.config import compose_config
from landslide.lifecycle import COMPLETE
from landslide.selection import (
    finished_runs,
    rank_runs,
    ranking_table,
    recommendation,
    scene_files,
)
from landslide.shift import mix_to_scene_mmd
from landslide.world import GENERATOR_VERSION

SMALL = ["data.world.size=384", "data.patch_size=32"]


def log_config_only_run(
    client: mlflow.MlflowClient, experiment_id: str, cfg, name: str, world_version: int
) -> str:
    """A complete run holding just the resolved config and world version, as train() logs
    them."""
    run = client.create_run(experiment_id, run_name=name)
    client.log_param(run.info.run_id, "data.world.generator_version", world_version)
    path = Path(client.tracking_uri.removeprefix("sqlite:///")).parent / name / "config.yaml"
    path.parent.mkdir()
    path.write_text(OmegaConf.to_yaml(OmegaConf.to_container(cfg, resolve=True)))
    client.log_artifact(run.info.run_id, str(path))
    client.set_tag(run.info.run_id, COMPLETE, "true")
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def test_runs_are_ranked_by_mmd_and_the_mmd_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    (tmp_path / "mlruns").mkdir()
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("sel", artifact_location=str(tmp_path / "artifacts"))
    configs = {
        mix: compose_config([f"domain_mix={mix}", *SMALL], root_dir=tmp_path)
        for mix in ("ib700", "j700")
    }
    for mix, cfg in configs.items():
        log_config_only_run(client, experiment, cfg, mix, GENERATOR_VERSION)
    # A run recorded before the world was an injected generator: data.world is {size, seed}.
    legacy = configs["ib700"].copy()
    with open_dict(legacy):
        del legacy.data.world["_target_"]
    log_config_only_run(client, experiment, legacy, "ib700-again", GENERATOR_VERSION)
    old = GENERATOR_VERSION - 1
    log_config_only_run(client, experiment, configs["ib700"], "old-world", old)
    client.set_terminated(client.create_run(experiment, run_name="crashed").info.run_id, "FAILED")
    # FINISHED without being complete, as Lightning marked runs before testing.
    client.set_terminated(client.create_run(experiment, run_name="untested").info.run_id)

    runs = finished_runs(client, ["sel"])
    assert sorted(r.info.run_name for r in runs) == ["ib700", "ib700-again", "j700", "old-world"]

    datamodule = instantiate(configs["ib700"].data)
    datamodule.prepare_data()
    scene = scene_files(datamodule.files("iburi").root)
    # The skipped run comes first and another mix's run next: a run on the skipped run's
    # data must still be measured on its own data, not on the last one built.
    order = ["old-world", "j700", "ib700", "ib700-again"]
    runs = sorted(runs, key=lambda r: order.index(r.info.run_name))
    ranked = rank_runs(client, runs, scene, "iburi", max_patches=60, pixels=500)

    # The run on an older world is left out: its training data can no longer be rebuilt.
    assert (
        f"skipping old-world: trained on data.world.generator_version {old} "
        f"(now {GENERATOR_VERSION})" in caplog.text
    )
    # Iburi's own training data is closer to the Iburi scene than Jiuzhaigou's.
    assert [c.run_name for c in ranked] == ["ib700", "ib700-again", "j700"]
    assert ranked[0].mean_mmd == ranked[1].mean_mmd < ranked[2].mean_mmd
    datamodule.setup()
    direct = mix_to_scene_mmd(datamodule, scene, max_patches=60, pixels=500)
    assert ranked[0].mmd == pytest.approx(direct)
    logged = client.get_run(ranked[0].run_id).data.metrics
    assert logged["mmd/iburi/mean"] == pytest.approx(ranked[0].mean_mmd)
    assert logged["mmd/iburi/post_ndvi"] == pytest.approx(direct["post_ndvi"])
    # Runs on the same training data tie: they share a rank and the recommendation.
    rows = ranking_table(ranked, "iburi").splitlines()[2:]
    assert [r.split(" | ")[:3] for r in rows] == [
        ["| 1", "ib700", "ib700"],
        ["| 1", "ib700-again", "ib700"],
        ["| 2", "j700", "j700"],
    ]
    assert recommendation(ranked).startswith("training mix ib700 (mean squared MMD ")
    assert recommendation(ranked).endswith(
        f"2 run(s) trained on it: ib700 ({ranked[0].run_id}), ib700-again ({ranked[1].run_id})"
    )


def test_unknown_experiment_and_missing_scene_are_clear_errors(tmp_path: Path) -> None:
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    with pytest.raises(ValueError, match="MLflow experiment 'nope' does not exist"):
        finished_runs(client, ["nope"])
    with pytest.raises(FileNotFoundError, match="not a prepared scene .*stack.tif"):
        scene_files(tmp_path)
