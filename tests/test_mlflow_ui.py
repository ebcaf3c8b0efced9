"""What MLflow users meet, and how a shared tracking server is used: a real ``mlflow server``
that a ``train.py`` sweep (two jobs at once, joblib launcher) logs to and ``report.py`` reads
back, read through its REST API, and the logged model loaded by MLflow alone."""

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import mlflow
import numpy as np
import pytest
import requests
import torch
from entry_points import run

from landslide.task import SegmentationTask

DOMAINS = ("iburi", "jiuzhaigou", "palu", "luding")
SMALL = [
    "trainer=quick",
    "data.world.size=512",
    "data.patch_size=32",
    "model.net.widths=[8,16,32,64]",
]
REGISTERED = "palu-mapper"


class Store(NamedTuple):
    """A tracking server a sweep logged to, a fresh process that loads a logged model with
    MLflow alone and predicts, and the logs of ``report.py`` and ``select_model.py`` reading
    the server."""

    root: Path
    uri: str
    api: str
    image: np.ndarray
    predicted: subprocess.Popen[str]
    model_run_id: str
    report_log: str
    selection_log: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, small_world: Path) -> Iterator[Store]:
    """A real ``mlflow server`` (SQLite store, artifacts it serves), then a two-job sweep run
    by the joblib launcher (two jobs at once) that logs to it, with registration and system
    metrics, then ``report.py`` and ``select_model.py`` reading it back."""
    root = tmp_path_factory.mktemp("mlflow_ui")
    (root / "mlruns").mkdir()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server",
         "--backend-store-uri", f"sqlite:///{root}/mlruns/mlflow.db",
         "--artifacts-destination", str(root / "mlruns" / "artifacts"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    api = f"{uri}/api/2.0/mlflow"
    predicted = None
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{uri}/health", timeout=2).ok:
                    break
            except requests.RequestException:  # not listening yet, or starting up
                pass
            assert server.poll() is None, "mlflow server exited"
            assert time.monotonic() < deadline, "mlflow server did not answer in 120 s"
            time.sleep(0.5)
        argv = [
            "-m",
            *SMALL,
            f"paths.data_dir={small_world}",
            "seed=1,2",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            f"logger.tracking_uri={uri}",
            f"logger.register_as={REGISTERED}",
            "logger.system_metrics=true",
            "logger.system_metrics_interval_s=1",
        ]
        # Given explicitly: MLflow sets MLFLOW_TRACKING_URI in a process that trained before.
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
        code, output = run("train.py", argv, root, env=env)
        assert code == 0, output
        image, predicted, model_run_id = start_prediction(uri, root)
        code, output = run("report.py", [], root, env=env)
        assert code == 0, output
        palu = small_world / "default_world" / "palu"
        selection = [f"scene={palu}", "scene_name=palu", "max_patches=40", "pixels=300"]
        code, selected = run("select_model.py", selection, root, env=env)
        assert code == 0, selected
        yield Store(root, uri, api, image, predicted, model_run_id, output, selected)
    finally:
        server.terminate()
        server.wait(30)
        if predicted is not None:
            predicted.kill()
            predicted.wait(30)


PREDICT = """
import sys
import mlflow
import numpy as np

mlflow.set_tracking_uri(sys.argv[1])
model = mlflow.pyfunc.load_model(sys.argv[2])
np.save(sys.argv[4], model.predict(np.load(sys.argv[3])))
print(model.metadata.metadata["bands"], model.metadata.metadata["threshold"])
"""


def start_prediction(uri: str, root: Path) -> tuple[np.ndarray, subprocess.Popen[str], str]:
    """A fresh Python process loading a training run's logged model by its
    ``models:/<model id>`` URI and predicting a random image: the image, the process and
    the run."""
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("landslide")
    assert experiment is not None
    run_ = client.search_runs(
        [experiment.experiment_id], "tags.`landslide.complete` = 'true'", max_results=1
    )[0]
    model_id = run_.outputs.model_outputs[0].model_id
    image = np.random.default_rng(0).random((2, 10, 40, 56), dtype=np.float32)
    np.save(root / "image.npy", image)
    (root / "predict.py").write_text(PREDICT)
    process = subprocess.Popen(
        [sys.executable, str(root / "predict.py"), uri, f"models:/{model_id}",
         str(root / "image.npy"), str(root / "probability.npy")],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    return image, process, run_.info.run_id


def get(store: Store, endpoint: str, **params: Any) -> dict[str, Any]:
    response = requests.get(f"{store.api}/{endpoint}", params=params, timeout=30)
    assert response.ok, response.text
    return response.json()


def post(store: Store, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(f"{store.api}/{endpoint}", json=body, timeout=30)
    assert response.ok, response.text
    return response.json()


def tags(entity: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in entity.get("tags", [])}


def experiment_runs(store: Store) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    experiment = get(store, "experiments/get-by-name", experiment_name="landslide")["experiment"]
    found = post(store, "runs/search", {"experiment_ids": [experiment["experiment_id"]]})
    return experiment, found["runs"]


def training_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in runs if tags(r["data"]).get("landslide.kind") != "sweep"]


def test_the_ui_opens_training_runs_with_tags_descriptions_and_datasets(store: Store) -> None:
    experiment, runs = experiment_runs(store)
    assert tags(experiment)["mlflow.experimentKind"] == "custom_model_development"
    trained = training_runs(runs)
    names = sorted(r["info"]["run_name"] for r in trained)
    assert names == ["resu_senet-ib350j350-seed1", "resu_senet-ib350j350-seed2"]
    for run_ in trained:
        run_tags = tags(run_["data"])
        assert run_["info"]["status"] == "FINISHED"
        assert run_tags["network"] == "resu_senet"
        assert run_tags["mix"] == "ib350j350"
        assert run_tags["data_source"] == "default_world"
        assert run_tags["split"] == "random"
        assert run_tags["budget"] == "quick"
        assert len(run_tags["mlflow.source.git.commit"]) == 40
        note = run_tags["mlflow.note.content"]
        assert "**resu_senet** trained on mix **ib350j350** (iburi 350, jiuzhaigou 350" in note
        metrics = {m["key"]: m["value"] for m in run_["data"]["metrics"]}
        for domain in DOMAINS:
            assert f"| {domain} | " in note
            assert f"{metrics[f'test/{domain}/f1']:.4f}" in note
        assert "| palu | unseen |" in note and "| iburi | trained on |" in note
        # System metrics were sampled every second while it trained.
        assert "system/cpu_utilization_percentage" in metrics
        assert "system/system_memory_usage_megabytes" in metrics

        inputs = run_["inputs"]["dataset_inputs"]
        roles = {(i["dataset"]["name"], tags(i)["mlflow.data.context"]) for i in inputs}
        assert roles == {
            *((d, "training") for d in ("iburi", "jiuzhaigou")),
            *((d, "validation") for d in ("iburi", "jiuzhaigou")),
            *((d, "test") for d in DOMAINS),
        }
        profiles = {
            (i["dataset"]["name"], tags(i)["mlflow.data.context"]): json.loads(
                i["dataset"]["profile"]
            )
            for i in inputs
        }
        assert profiles[("iburi", "training")]["samples"] == 315  # 350, 10 % held out
        assert profiles[("palu", "test")]["samples"] == 300
        assert all(len(i["dataset"]["digest"]) == 16 for i in inputs)


def test_each_run_has_a_registered_model_with_its_test_metrics(store: Store) -> None:
    _, runs = experiment_runs(store)
    versions = []
    for run_ in training_runs(runs):
        outputs = run_["outputs"]["model_outputs"]
        assert len(outputs) == 1
        model = get(store, f"logged-models/{outputs[0]['model_id']}")["model"]
        assert model["info"]["name"] == run_["info"]["run_name"]
        assert model["info"]["source_run_id"] == run_["info"]["run_id"]
        assert model["info"]["status"] == "LOGGED_MODEL_READY"
        linked = {(m["key"], m.get("dataset_name")): m["value"] for m in model["data"]["metrics"]}
        params = {p["key"]: p["value"] for p in model["data"]["params"]}
        assert params["model.name"] == "resu_senet"
        assert params["domain_mix.counts.iburi"] == "350"
        assert "paths.root_dir" not in params  # the run has the whole config, the model the gist
        run_metrics = {m["key"]: m["value"] for m in run_["data"]["metrics"]}
        for domain in DOMAINS:
            key = f"test/{domain}/f1"
            assert linked[(key, domain)] == pytest.approx(run_metrics[key])
        assert ("val/loss", None) in linked  # the kept checkpoint's, linked by MLflow
        run_filter = f"run_id = '{run_['info']['run_id']}'"
        found = get(store, "model-versions/search", filter=run_filter)["model_versions"]
        assert [v["name"] for v in found] == [REGISTERED]
        versions.append(int(found[0]["version"]))
    assert sorted(versions) == [1, 2]


def test_a_sweep_is_one_parent_run_with_its_jobs_as_children(store: Store) -> None:
    _, runs = experiment_runs(store)
    parents = [r for r in runs if tags(r["data"]).get("landslide.kind") == "sweep"]
    assert len(parents) == 1
    parent = parents[0]
    assert parent["info"]["status"] == "FINISHED"
    children = [
        r for r in runs if tags(r["data"]).get("mlflow.parentRunId") == parent["info"]["run_id"]
    ]
    assert len(children) == 2
    params = {p["key"]: p["value"] for p in parent["data"].get("params", [])}
    assert params["sweep.launcher"].endswith("JoblibLauncher")
    assert "seed=1,2" in params["sweep.overrides"].split()


def test_the_logged_model_loads_with_mlflow_alone_and_maps_like_the_checkpoint(
    store: Store, tmp_path: Path
) -> None:
    stdout, stderr = store.predicted.communicate(timeout=300)
    assert store.predicted.returncode == 0, stderr[-3000:]
    assert "'post_ndvi']" in stdout and "0.5" in stdout
    served = np.load(store.root / "probability.npy")

    client = mlflow.MlflowClient(store.uri)
    checkpoint = client.download_artifacts(
        store.model_run_id, "checkpoints/best.ckpt", str(tmp_path)
    )
    task = SegmentationTask.load_from_checkpoint(checkpoint, map_location="cpu").eval()
    with torch.no_grad():
        expected = task(torch.from_numpy(store.image)).sigmoid().numpy()
    assert served.shape == (2, 40, 56)
    np.testing.assert_allclose(served, expected, rtol=0, atol=1e-6)


def test_a_joblib_sweep_logs_two_runs_at_once_to_the_server_and_report_and_selection_read_them(
    store: Store,
) -> None:
    experiment, runs = experiment_runs(store)
    # The server keeps the artifacts (a local path would be this machine's only).
    assert experiment["artifact_location"].startswith("mlflow-artifacts:")
    trained = training_runs(runs)
    assert len({r["info"]["run_id"] for r in trained}) == 2
    assert all(tags(r["data"]).get("landslide.complete") == "true" for r in trained)
    first, second = sorted(trained, key=lambda r: int(r["info"]["start_time"]))
    # Run side by side: the second started before the first ended.
    assert int(second["info"]["start_time"]) < int(first["info"]["end_time"])

    assert "Report of 2 runs" in store.report_log
    # Model selection ranked both runs (they share their training data) from the server.
    assert all(
        "mmd/palu/mean" in {m["key"] for m in r["data"]["metrics"]}
        for r in training_runs(experiment_runs(store)[1])
    )
    assert "resu_senet-ib350j350-seed1" in store.selection_log
    assert "resu_senet-ib350j350-seed2" in store.selection_log
    reports = get(store, "experiments/get-by-name", experiment_name="reports")["experiment"]
    (report,) = post(store, "runs/search", {"experiment_ids": [reports["experiment_id"]]})["runs"]
    assert report["info"]["status"] == "FINISHED"
    listed = get(store, "artifacts/list", run_id=report["info"]["run_id"], path="report")
    assert "report/report.md" in {f["path"] for f in listed.get("files", [])}
