"""Model references (run ids and names, ``runs:/`` and registered ``models:/`` URIs) for
map.py and select_model.py, the map's GeoJSON and its lineage in MLflow.

The store is built by hand (a tiny network trained for a moment, logged as a complete run
with a ``checkpoints/best.ckpt``), so no training run is needed.
"""

import importlib.util
import json
from pathlib import Path

import geopandas as gpd
import lightning as L
import mlflow
import numpy as np
import pytest
import rasterio
import shapely
import torch
from conftest import write_domain
from mlflow.entities import LoggedModelOutput

from landslide.bands import BANDS
from landslide.config import CONF_DIR, compose_config
from landslide.lifecycle import COMPLETE
from landslide.mapping.command import run_map
from landslide.mapping.errors import MappingError
from landslide.mapping.pipeline import OUTPUTS, write_geojson
from landslide.model_refs import ModelRefError, resolve_run, resolve_runs
from landslide.task import SegmentationTask

ROOT = Path(__file__).resolve().parents[1]
NAME = "resu_senet-toy-seed42"
NET = {
    "_target_": "landslide.models.ResUSENet",
    "in_channels": len(BANDS),
    "num_classes": 1,
    "widths": [8, 16, 32, 64],
}
FAST_MAP = ["window=64", "overlap=16", "batch_size=4", "device=cpu", "progress=false"]


class Store:
    """The temporary project: a scene, a store and the ids of what it holds."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uri = f"sqlite:///{root}/mlruns/mlflow.db"
        self.scene = root / "data" / "palu"
        self.client = mlflow.MlflowClient(self.uri)
        self.run_id = ""  # complete, with a logged model output and a registered version
        self.old_id = ""  # complete, from before logged models
        self.failed_id = ""  # failed, though it has a checkpoint
        self.model_id = ""  # the complete run's logged model


def train_checkpoint(scene: Path, path: Path) -> None:
    """A tiny network trained for a moment on the scene, so that its map has landslides."""
    with rasterio.open(scene / "stack.tif") as src:
        image = src.read()
    with rasterio.open(scene / "mask.tif") as src:
        target = torch.from_numpy(src.read(1).astype(np.float32))
    lo = np.nanmin(image, axis=(1, 2), keepdims=True)
    x = torch.from_numpy((image - lo) / (np.nanmax(image, axis=(1, 2), keepdims=True) - lo))
    torch.manual_seed(0)
    task = SegmentationTask(NET, lr=1e-2, bands=list(BANDS))
    optimiser = task.configure_optimizers()
    rng = np.random.default_rng(0)
    for _ in range(15):
        rows, cols = rng.integers(0, x.shape[1] - 48, (2, 8))
        batch = torch.stack([x[:, r : r + 48, c : c + 48] for r, c in zip(rows, cols, strict=True)])
        labels = torch.stack(
            [target[r : r + 48, c : c + 48] for r, c in zip(rows, cols, strict=True)]
        )
        loss = task.loss(task(batch).unsqueeze(1), labels.unsqueeze(1))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    trainer = L.Trainer(logger=False, enable_checkpointing=False, max_epochs=0)
    trainer.strategy.connect(task)
    trainer.save_checkpoint(path)


def log_run(store: Store, experiment_id: str, name: str, checkpoint: Path, status: str) -> str:
    run = store.client.create_run(experiment_id, run_name=name)
    run_id = run.info.run_id
    store.client.log_artifact(run_id, str(checkpoint), "checkpoints")
    if status == "FINISHED":
        store.client.set_tag(run_id, COMPLETE, "true")
    store.client.set_terminated(run_id, status)
    return run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    root = tmp_path_factory.mktemp("project")
    (root / "mlruns").mkdir()
    store = Store(root)
    write_domain(root / "data", "palu", size=128)
    checkpoint = root / "best.ckpt"
    train_checkpoint(store.scene, checkpoint)
    client = store.client
    experiment_id = client.create_experiment(
        "landslide", artifact_location=str(root / "mlruns" / "artifacts")
    )
    store.run_id = log_run(store, experiment_id, NAME, checkpoint, "FINISHED")
    store.old_id = log_run(store, experiment_id, "old-run", checkpoint, "FINISHED")
    store.failed_id = log_run(store, experiment_id, "failed-run", checkpoint, "FAILED")
    model = client.create_logged_model(experiment_id, name="model", source_run_id=store.run_id)
    client.log_outputs(store.run_id, models=[LoggedModelOutput(model.model_id, step=0)])
    store.model_id = model.model_id
    client.create_registered_model("palu")
    client.create_registered_model("shaky")
    for name, run_id, alias in (
        ("palu", store.run_id, "champion"),
        ("palu", store.old_id, "older"),
        ("shaky", store.failed_id, "broken"),
        ("shaky", "0" * 32, "lost"),  # a version whose run is in another store
    ):
        version = client.create_model_version(
            name, source=f"runs:/{run_id}/checkpoints", run_id=run_id
        )
        client.set_registered_model_alias(name, alias, version.version)
    return store


@pytest.fixture(autouse=True)
def project_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def compose(store: Store, overrides: list[str], config: str = "map"):  # noqa: ANN201
    return compose_config(
        [f"tracking_uri={store.uri}", *overrides],
        root_dir=store.root,
        output_dir=store.root / "log",
        config_name=config,
        config_dir=CONF_DIR / "mapping" if config == "map" else CONF_DIR,
    )


def test_every_reference_form_names_the_complete_run(store: Store) -> None:
    expected = {
        store.run_id: f"MLflow run {NAME} ({store.run_id})",
        NAME: f"MLflow run {NAME} ({store.run_id})",
        f"runs:/{store.run_id}": f"MLflow run {NAME} ({store.run_id})",
        f"runs:/{store.run_id}/model": f"MLflow run {NAME} ({store.run_id})",
        "models:/palu@champion": (
            f"registered model palu version 1 (alias champion), run {NAME} ({store.run_id})"
        ),
        "models:/palu/1": f"registered model palu version 1, run {NAME} ({store.run_id})",
        f"models:/{store.model_id}": f"logged model {store.model_id}, run {NAME} ({store.run_id})",
    }
    for ref, description in expected.items():
        resolved = resolve_run(store.client, ref, ["landslide"])
        assert (resolved.run.info.run_id, resolved.description) == (store.run_id, description)
    latest = resolve_run(store.client, "models:/palu/latest", ["landslide"])
    assert latest.run.info.run_id == store.old_id
    assert latest.description.startswith("registered model palu version 2, run old-run")


def test_references_naming_no_complete_run_are_one_line_errors(store: Store) -> None:
    errors = {
        "models:/palu@nope": "models=models:/palu@nope: registered model palu has no alias nope; "
        "its aliases: @champion (version 1), @older (version 2) (or give models:/palu/<version>)",
        "models:/nobody@champion": "models=models:/nobody@champion: no registered model nobody "
        f"in {store.uri}; registered: palu, shaky (register one with train.py "
        "logger.register_as=<name>)",
        "models:/palu/7": "models=models:/palu/7: registered model palu has no version 7; "
        "its versions: 1, 2",
        "models:/shaky@broken": f"models=models:/shaky@broken: run failed-run ({store.failed_id}) "
        "is not complete (status FAILED); point the alias at a version of a complete run "
        "(MlflowClient.set_registered_model_alias)",
        "models:/shaky@lost": "models=models:/shaky@lost: registered model shaky version 2 "
        f"(alias lost) comes from run {'0' * 32}, which is not in {store.uri}; point "
        "tracking_uri at the store it was trained in",
        f"runs:/{'f' * 32}": f"models=runs:/{'f' * 32}: no run {'f' * 32} in {store.uri}; give "
        "the id of a run in this store (runs:/<32 hex characters>)",
        store.failed_id: f"models={store.failed_id}: run failed-run ({store.failed_id}) is not "
        "complete (status FAILED); choose a run that finished training",
        "nobody": "models=nobody: no complete run of that name in ['landslide'] at "
        f"{store.uri}; give a run name, a run id, runs:/<run id> or models:/<name>@<alias>",
    }
    for ref, message in errors.items():
        with pytest.raises(ModelRefError) as err:
            resolve_run(store.client, ref, ["landslide"], key="models")
        assert str(err.value) == message
    # map.py says the same, and names its own extra forms.
    with pytest.raises(MappingError, match=r"^model=nobody: .*models:/<name>@<alias>, a checkp"):
        run_map(compose(store, [f"scene={store.scene}", "model=nobody"]))


def test_map_with_a_registered_alias_logs_geojson_and_its_model_input(store: Store) -> None:
    result = run_map(
        compose(store, [*FAST_MAP, f"scene={store.scene}", "model=models:/palu@champion"])
    )
    assert result.summary["model"]["run_id"] == store.run_id

    # The GeoJSON holds the GeoPackage's polygons in longitude, latitude.
    gpkg = gpd.read_file(result.path("landslides.gpkg"))
    geojson = gpd.read_file(result.path("landslides.geojson"))
    assert len(gpkg) > 0 and geojson.crs.to_epsg() == 4326
    assert list(geojson["id"]) == list(gpkg["id"])
    assert list(geojson.columns) == list(gpkg.columns)
    centroids = shapely.centroid(geojson.geometry.values)
    assert np.allclose(shapely.get_x(centroids), gpkg["lon"], atol=1e-6)  # 0.1 m
    assert np.allclose(shapely.get_y(centroids), gpkg["lat"], atol=1e-6)
    west, south, east, north = geojson.total_bounds
    assert west < gpkg["lon"].min() and east > gpkg["lon"].max()
    assert south < gpkg["lat"].min() and north > gpkg["lat"].max()
    areas = geojson.to_crs(gpkg.crs).geometry.area
    assert np.allclose(areas, gpkg.geometry.area, rtol=1e-2)
    raw = json.loads(result.path("landslides.geojson").read_text())
    lon, lat = raw["features"][0]["geometry"]["coordinates"][0][0]
    assert round(lon, 7) == lon and round(lat, 7) == lat

    client = store.client
    maps = client.get_experiment_by_name("maps")
    assert maps.tags["mlflow.experimentKind"] == "custom_model_development"
    (run,) = client.search_runs([maps.experiment_id])
    note = run.data.tags["mlflow.note.content"]
    assert note.startswith(
        f"registered model palu version 1 (alias champion), run {NAME} ({store.run_id})\n\n"
    )
    assert f"| landslides | {len(gpkg)} |" in note and "| f1 | " in note
    assert run.data.tags["model_run_id"] == store.run_id
    inputs = client.get_run(run.info.run_id).inputs.model_inputs
    assert [m.model_id for m in inputs] == [store.model_id]
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == set(OUTPUTS)


def test_a_run_without_a_logged_model_maps_without_a_model_input(store: Store) -> None:
    overrides = [*FAST_MAP, f"scene={store.scene}", f"model=runs:/{store.old_id}/model"]
    result = run_map(compose(store, [*overrides, "scene_name=old", "mlflow.log_rasters=false"]))
    assert result.summary["model"]["name"] == "old-run"
    client = store.client
    maps = client.search_runs(
        [client.get_experiment_by_name("maps").experiment_id], "tags.scene = 'old'"
    )
    assert client.get_run(maps[0].info.run_id).inputs.model_inputs == []
    assert (
        maps[0].data.tags["mlflow.note.content"].startswith(f"MLflow run old-run ({store.old_id})")
    )


def test_an_empty_map_is_an_empty_feature_collection(tmp_path: Path) -> None:
    empty = gpd.GeoDataFrame({"id": []}, geometry=[], crs="EPSG:32654")
    write_geojson(empty, tmp_path / "landslides.geojson")
    raw = json.loads((tmp_path / "landslides.geojson").read_text())
    assert raw["type"] == "FeatureCollection" and raw["features"] == []


def test_select_model_ranks_only_the_listed_models(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location("select_model", ROOT / "select_model.py")
    assert spec is not None and spec.loader is not None
    select_model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(select_model)
    ranked: list[list[str]] = []

    def rank_runs(client, runs, *args):  # noqa: ANN001, ANN202
        ranked.append([run.info.run_id for run in runs])
        return []

    monkeypatch.setattr(select_model, "rank_runs", rank_runs)
    main = select_model.main.__wrapped__
    listed = f"models=[models:/palu@older,{NAME},runs:/{store.run_id},models:/palu/1]"
    with pytest.raises(SystemExit, match="no run could be ranked"):
        main(compose(store, [f"scene={store.scene}", listed], "select_model"))
    assert ranked == [[store.old_id, store.run_id]]
    with pytest.raises(SystemExit, match=r"^select_model.py: models=models:/palu@x: registered"):
        main(compose(store, [f"scene={store.scene}", "models=[models:/palu@x]"], "select_model"))
    runs = resolve_runs(store.client, [NAME, f"runs:/{store.run_id}"], ["landslide"], "models")
    assert [run.info.run_id for run in runs] == [store.run_id]
