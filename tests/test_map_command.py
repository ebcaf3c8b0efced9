"""map.py end to end: a model trained and logged by train(), chosen by name or by MMD,
mapping the default world's Palu, with the map logged to MLflow and linked both ways."""

import json
import logging
import shutil
from pathlib import Path

import entry_points
import mlflow
import pytest
import rasterio

from landslide.config import CONF_DIR, compose_config
from landslide.mapping.command import run_map
from landslide.mapping.errors import MappingError
from landslide.mapping.pipeline import OUTPUTS

FAST_MAP = [
    "window=128",
    "overlap=32",
    "progress=false",
    "selection.max_patches=40",
    "selection.pixels=500",
]


@pytest.fixture
def store(trained_store: tuple[Path, str]) -> tuple[Path, str]:
    return trained_store


def strict(constant: str) -> None:
    raise AssertionError(f"summary.json holds {constant}: not strict JSON")


@pytest.fixture(autouse=True)
def project_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command reads the project's own store, never the caller's environment's."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def compose_map(root: Path, overrides: list[str]):
    return compose_config(
        [*FAST_MAP, *overrides],
        root_dir=root,
        output_dir=root / "log",
        config_name="map",
        config_dir=CONF_DIR / "mapping",
    )


def test_map_by_run_name_logs_a_linked_map_run(store: tuple[Path, str]) -> None:
    root, uri = store
    palu = root / "data" / "default_world" / "palu"
    result = run_map(compose_map(root, [f"scene={palu}", "model=resu_senet-ib700-seed42"]))

    assert result.folder == root / "outputs" / "map" / "palu" / "resu_senet-ib700-seed42"
    with (
        rasterio.open(palu / "stack.tif") as scene,
        rasterio.open(result.path("probability.tif")) as probability,
    ):
        assert (probability.crs, probability.transform, probability.shape) == (
            scene.crs,
            scene.transform,
            scene.shape,
        )
    summary = json.loads(result.path("summary.json").read_text(), parse_constant=strict)
    assert summary["model"]["name"] == "resu_senet-ib700-seed42"
    assert summary["model"]["bands"][0] == "slope" and len(summary["model"]["bands"]) == 10
    # Palu is labelled: the map is scored against its mask and inventory.
    assert 0.0 <= result.metrics["f1"] <= 1.0 and result.metrics["reference_count"] > 0

    client = mlflow.MlflowClient(uri)
    maps = client.get_experiment_by_name("maps")
    (run,) = client.search_runs([maps.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "palu-resu_senet-ib700-seed42"
    model_run = client.get_run(run.data.tags["model_run_id"])
    assert model_run.info.run_name == "resu_senet-ib700-seed42"
    assert model_run.data.tags["map/palu"] == run.info.run_id  # the link back
    # Lineage data -> model -> map: the training run's logged model is the map's input.
    (trained,) = model_run.outputs.model_outputs
    inputs = client.get_run(run.info.run_id).inputs.model_inputs
    assert [m.model_id for m in inputs] == [trained.model_id]
    assert run.data.metrics["map/palu/f1"] == pytest.approx(result.metrics["f1"])
    assert run.data.metrics["map/palu/landslide_count"] == summary["landslides"]["count"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == set(OUTPUTS)


def test_auto_maps_with_the_run_closest_by_mmd(
    store: tuple[Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    root, uri = store
    caplog.set_level(logging.INFO)
    iburi = root / "data" / "default_world" / "iburi"
    cfg = compose_map(root, [f"scene={iburi}", "model=auto", "mlflow.log_rasters=false"])
    result = run_map(cfg)
    # Iburi's own training data is the closest to the Iburi scene.
    assert result.summary["model"]["name"] == "resu_senet-ib700-seed42"
    assert "model=auto chose resu_senet-ib700-seed42" in caplog.text
    assert "closest of 2 ranked runs to iburi by mean per-band MMD" in caplog.text
    client = mlflow.MlflowClient(uri)
    ranked = client.get_run(result.summary["model"]["run_id"]).data.metrics
    assert "mmd/iburi/mean" in ranked
    maps = client.search_runs([client.get_experiment_by_name("maps").experiment_id])
    logged = next(r for r in maps if r.data.tags["scene"] == "iburi")
    assert "model=auto chose" in logged.data.tags["mlflow.note.content"]
    assert not any(a.path.endswith(".tif") for a in client.list_artifacts(logged.info.run_id))


def test_auto_ranks_runs_for_a_bare_unlabelled_stack(
    store: tuple[Path, str], tmp_path: Path
) -> None:
    """A new event as users have it: one GeoTIFF, no mask, no statistics beside it."""
    root, uri = store
    event = tmp_path / "event" / "jiuzhaigou_2017.tif"
    event.parent.mkdir()
    shutil.copy(root / "data" / "default_world" / "jiuzhaigou" / "stack.tif", event)
    result = run_map(compose_map(root, [f"scene={event}", "model=auto", "mlflow.log=false"]))
    assert result.summary["model"]["name"] == "resu_senet-j700-seed42"
    assert result.folder == root / "outputs" / "map" / "jiuzhaigou_2017" / "resu_senet-j700-seed42"
    assert result.metrics == {} and result.summary["scene"]["reference"] is None
    assert sorted(p.name for p in event.parent.iterdir()) == ["jiuzhaigou_2017.tif"]


def test_bad_model_and_settings_are_one_line_errors(store: tuple[Path, str]) -> None:
    root, uri = store
    palu = root / "data" / "default_world" / "palu"
    with pytest.raises(MappingError, match="model=nobody: no complete run of that name in"):
        run_map(compose_map(root, [f"scene={palu}", "model=nobody"]))
    with pytest.raises(MappingError, match="^window='abc': give an integer$"):
        run_map(compose_map(root, [f"scene={palu}", "model=auto", "window=abc"]))
    with pytest.raises(MappingError, match="^scene= and model= not set; e.g. python map.py"):
        run_map(compose_map(root, []))
    with pytest.raises(MappingError, match="^device=gpu: not a device; use device=auto, cpu"):
        run_map(compose_map(root, [f"scene={palu}", "model=auto", "device=gpu"]))
    with pytest.raises(MappingError, match="need 0 <= overlap < window"):
        run_map(compose_map(root, [f"scene={palu}", "model=auto", "overlap=128"]))
    code, output = entry_points.run("map.py", [f"scene={palu}", "model=missing/best.ckpt"], root)
    assert code == 1
    assert output.strip().splitlines()[-1] == (
        "map.py: model=missing/best.ckpt: no such checkpoint file"
    )
    assert not (root / "outputs" / "map" / "palu" / "best").exists()
