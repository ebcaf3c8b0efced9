"""Choose a trained model for a new scene by per-band MMD (paper Section V, Luding).

For each finished run in the MLflow store, rebuild its training data from the run's own
resolved config (the ``config.yaml`` artifact), measure the per-band MMD between that data
and the scene, log it to the run (``mmd/<scene>/<band>`` and ``mmd/<scene>/mean``) and rank
the runs: the smallest mean discrepancy is the recommendation.
"""

import json
import logging
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.entities import Metric, Run
from omegaconf import DictConfig, OmegaConf

from landslide.data.datamodule import LandslideDataModule
from landslide.layout import DomainFiles
from landslide.lifecycle import NEUTRAL_VALUES, is_complete
from landslide.mlflow_store import quiet_artifact_transfers
from landslide.model_refs import resolve_runs
from landslide.safe_loading import instantiate_trusted
from landslide.shift import mix_to_scene_mmd

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    """A trained run and its discrepancy to the scene.

    Attributes:
        run_id: MLflow run id.
        run_name: MLflow run name (model, mix, seed).
        mix: name of the run's training mix (``domain_mix.name``).
        mmd: per-band squared MMD between the run's training data and the scene.
    """

    run_id: str
    run_name: str
    mix: str
    mmd: dict[str, float]

    @property
    def mean_mmd(self) -> float:
        """Mean over bands: the ranking key."""
        return sum(self.mmd.values()) / len(self.mmd)


def candidate_runs(
    client: mlflow.MlflowClient,
    experiments: Sequence[str],
    filter_string: str = "",
    models: Sequence[str] = (),
) -> list[Run]:
    """The runs to rank: the ``models`` listed, or every complete run of the experiments.

    ``models`` are run ids, run names, ``runs:/`` or ``models:/`` URIs
    (:mod:`landslide.model_refs`); ``filter_string`` applies to the complete runs only.

    Raises:
        ModelRefError: a listed model names no complete run.
        ValueError: an experiment does not exist.
    """
    if models:
        return resolve_runs(client, [str(m) for m in models], experiments, "models")
    return finished_runs(client, experiments, filter_string)


def finished_runs(
    client: mlflow.MlflowClient, experiments: Sequence[str], filter_string: str = ""
) -> list[Run]:
    """Complete runs (:func:`landslide.lifecycle.is_complete`) of the named experiments."""
    ids = []
    for name in experiments:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise ValueError(f"MLflow experiment '{name}' does not exist in {client.tracking_uri}")
        ids.append(experiment.experiment_id)
    query = " and ".join(f for f in ("attributes.status = 'FINISHED'", filter_string) if f)
    runs = client.search_runs(ids, filter_string=query, max_results=10_000)
    return [run for run in runs if is_complete(run)]


def changed_data(run: Run, provenance: Mapping[str, str]) -> str | None:
    """How the data a run trained on differs from the data its config builds today.

    Today's data is described by the DataModule's
    :meth:`~landslide.data.datamodule.LandslideDataModule.provenance`; None when it is the
    same or the run recorded nothing to compare.

    Such a run's training data cannot be rebuilt: a newer generator makes another world,
    a domain prepared again holds other pixels; its MMD would be measured on data the run
    never saw.
    """
    params = run.data.params
    changed = [
        f"{key} {params[key]} (now {value})"
        for key, value in provenance.items()
        if key in params and params[key] != value
    ]
    return ", ".join(changed) or None


def legacy_data_config(cfg: DictConfig) -> DictConfig:
    """``cfg`` with its data section in today's form.

    Runs recorded before the simulated world was an injected generator hold ``data.world``
    as a bare ``{size, seed}``.
    """
    world = OmegaConf.select(cfg, "data.world")
    if isinstance(world, DictConfig) and "_target_" not in world:
        # The target those runs meant, which their setting keys already leave out.
        world._target_ = NEUTRAL_VALUES["data.world._target_"]
    return cfg


def recorded_config(client: mlflow.MlflowClient, run: Run) -> DictConfig:
    """A run's resolved config (its ``config.yaml`` artifact), its data section in today's form.

    Raises:
        ValueError: the file holds no config mapping.
    """
    with tempfile.TemporaryDirectory() as tmp, quiet_artifact_transfers():
        path = client.download_artifacts(run.info.run_id, "config.yaml", tmp)
        recorded = OmegaConf.load(path)
    if not isinstance(recorded, DictConfig):
        raise ValueError(
            f"run {run.info.run_id} config.yaml: holds a list, not a config mapping; "
            "delete the run or retrain it"
        )
    return legacy_data_config(recorded)


def run_datamodule(cfg: DictConfig, run: Run) -> LandslideDataModule:
    """The DataModule a run's recorded config builds, its data generated or checked."""
    datamodule: LandslideDataModule = instantiate_trusted(
        cfg.data, "data", f"run {run.info.run_id} config.yaml: "
    )
    datamodule.prepare_data()
    return datamodule


def rank_runs(
    client: mlflow.MlflowClient,
    runs: Sequence[Run],
    scene: DomainFiles,
    scene_name: str,
    max_patches: int = 300,
    pixels: int = 2000,
    seed: int = 0,
) -> list[Candidate]:
    """Rank runs by the mean per-band MMD between their training data and ``scene``.

    Runs that share training data (same data config and mix, e.g. several seeds or
    networks) share one computation. The MMD is logged to every run. Runs whose data has
    changed since (another world generator, a domain prepared again) are left out with a
    warning (see :func:`changed_data`).
    """
    # By data config: the DataModule, built once, its provenance (a digest of every
    # prepared domain's files), computed once, and its MMD once it is measured.
    datamodules: dict[str, LandslideDataModule] = {}
    provenances: dict[str, dict[str, str]] = {}
    mmds: dict[str, dict[str, float]] = {}
    candidates = []
    for run in runs:
        cfg = recorded_config(client, run)
        key = json.dumps(OmegaConf.to_container(cfg.data, resolve=True), sort_keys=True)
        if key not in datamodules:
            datamodules[key] = run_datamodule(cfg, run)
            provenances[key] = datamodules[key].provenance()
        datamodule = datamodules[key]
        changed = changed_data(run, provenances[key])
        if changed is not None:
            log.warning(
                "skipping %s: trained on %s; retrain it to rank it", run.info.run_name, changed
            )
            continue
        if key not in mmds:
            datamodule.setup()
            log.info("MMD of %s's training data to %s", run.info.run_name, scene_name)
            mmds[key] = mix_to_scene_mmd(datamodule, scene, max_patches, pixels, seed)
        candidate = Candidate(
            run.info.run_id,
            run.info.run_name,
            str(OmegaConf.select(cfg, "domain_mix.name", default="?")),
            mmds[key],
        )
        metrics = {f"mmd/{scene_name}/{b}": v for b, v in candidate.mmd.items()}
        metrics[f"mmd/{scene_name}/mean"] = candidate.mean_mmd
        client.log_batch(run.info.run_id, metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()])
        candidates.append(candidate)
    return sorted(candidates, key=lambda c: (c.mean_mmd, c.run_name))


def ranking_table(candidates: Sequence[Candidate], scene_name: str) -> str:
    """The ranking as a Markdown table, best first; runs on the same data share a rank."""
    lines = [
        f"| rank | run | training mix | mean MMD to {scene_name} |",
        "| ---: | --- | --- | ---: |",
    ]
    rank, previous = 0, None
    for c in candidates:
        if c.mean_mmd != previous:
            rank, previous = rank + 1, c.mean_mmd
        lines.append(f"| {rank} | {c.run_name} | {c.mix} | {c.mean_mmd:.4f} |")
    return "\n".join(lines)


def recommendation(candidates: Sequence[Candidate]) -> str:
    """The closest training data and every run trained on it (they tie on MMD)."""
    best = [c for c in candidates if c.mean_mmd == candidates[0].mean_mmd]
    runs = ", ".join(f"{c.run_name} ({c.run_id})" for c in best)
    return (
        f"training mix {best[0].mix} (mean squared MMD {best[0].mean_mmd:.4f}); "
        f"{len(best)} run(s) trained on it: {runs}"
    )


def scene_files(path: str | Path) -> DomainFiles:
    """The prepared scene at ``path``, checked."""
    files = DomainFiles(Path(path))
    missing = [p for p in (files.stack, files.stats) if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{files.root}: not a prepared scene (missing {', '.join(p.name for p in missing)}); "
            "prepare it with prepare.py or point scene= at a domain folder"
        )
    return files
