"""The data a run trained, validated and tested on, as MLflow datasets.

One dataset per domain and role (``training``, ``validation``, ``test``, MLflow's
``mlflow.data.context``), named after the domain, with the domain's folder as its source and
a digest of its rasters (or a patch domain's file index) and of the sample windows: two runs
on different data, or on other samples of the same data, show different digests in the UI's
Datasets column.
"""

import hashlib
import json
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from functools import cached_property
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import DatasetInput, InputTag
from mlflow.types import Schema, TensorSpec
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from landslide.checksums import file_digest
from landslide.data.datamodule import LandslideDataModule
from landslide.data.sampling import Patch

#: The roles a domain's samples play, as MLflow's dataset contexts.
TRAINING, VALIDATION, TEST = "training", "validation", "test"

#: Characters of the digest shown in the UI (MLflow's column holds at most 36).
DIGEST_LENGTH = 16


class PatchSet(MetaDataset):
    """The sample windows of one domain in one role, described, not copied.

    Args:
        folder: the domain's folder (the source).
        name: the domain's name.
        digest: a digest of the domain's files and of the windows.
        patches: the windows.
        patch_size: their side, px.
        bands: the image channels.
    """

    def __init__(
        self,
        folder: Path,
        name: str,
        digest: str,
        patches: Sequence[Patch],
        patch_size: int,
        bands: Sequence[str],
    ) -> None:
        self._patches = patches
        self._patch_size = patch_size
        self._bands = tuple(bands)
        with warnings.catch_warnings():
            # MLflow registers its local-file source twice and warns that the path "can be
            # interpreted in multiple ways" (both ways are the same class).
            warnings.simplefilter("ignore", UserWarning)
            source = resolve_dataset_source(str(Path(folder).resolve()))
        super().__init__(source, name=name, digest=digest, schema=self._tensor_schema)

    @cached_property
    def _tensor_schema(self) -> Schema:
        size = self._patch_size
        return Schema(
            [
                TensorSpec(np.dtype(np.float32), (-1, len(self._bands), size, size), "image"),
                TensorSpec(np.dtype(np.uint8), (-1, size, size), "mask"),
            ]
        )

    @property
    def profile(self) -> dict[str, Any]:
        """Sample counts, patch size and bands: what the UI shows beside the schema."""
        positives = sum(p.positive for p in self._patches)
        return {
            "samples": len(self._patches),
            "with_landslides": positives,
            "without_landslides": len(self._patches) - positives,
            "patch_size": self._patch_size,
            "bands": list(self._bands),
        }

    def to_dict(self) -> dict[str, str]:
        """MLflow's record: tensors are ``mlflow_tensorspec`` (its numpy datasets' form)."""
        config = super().to_dict()
        config["schema"] = json.dumps({"mlflow_tensorspec": self._tensor_schema.to_dict()})
        config["profile"] = json.dumps(self.profile)
        return config


def _digest(file_digests: Iterable[str], patches: Sequence[Patch]) -> str:
    digest = hashlib.sha256("".join(file_digests).encode())
    digest.update(json.dumps([asdict(p) for p in patches]).encode())
    return digest.hexdigest()[:DIGEST_LENGTH]


def run_datasets(datamodule: LandslideDataModule) -> list[tuple[str, PatchSet]]:
    """``(role, dataset)`` for every domain and role of a set-up DataModule."""
    roles = {
        TRAINING: datamodule.train_patches,
        VALIDATION: datamodule.val_patches,
        TEST: {name: pool.test for name, pool in datamodule.pools.items()},
    }
    digests: dict[str, list[str]] = {}
    out = []
    for role, patches_by_domain in roles.items():
        for name, patches in patches_by_domain.items():
            if not patches:
                continue
            if name not in digests:  # each file is read once
                digests[name] = [file_digest(p) for p in datamodule.data_files(name)]
            dataset = PatchSet(
                datamodule.source_folder(name),
                name,
                _digest(digests[name], patches),
                patches,
                datamodule.patch_size,
                datamodule.bands,
            )
            out.append((role, dataset))
    return out


def log_datasets(
    client: mlflow.MlflowClient, run_id: str, datasets: list[tuple[str, PatchSet]]
) -> None:
    """Log each ``(role, dataset)`` as an input of the run."""
    # MLflow's fluent log_input needs an active run, which would end this one on exit; the
    # client takes entities, which MLflow builds with the datasets' own converter.
    inputs = [
        DatasetInput(dataset._to_mlflow_entity(), [InputTag(MLFLOW_DATASET_CONTEXT, role)])
        for role, dataset in datasets
    ]
    client.log_inputs(run_id, datasets=inputs)


def evaluation_sets(datasets: list[tuple[str, PatchSet]]) -> dict[str, tuple[str, str]]:
    """Each domain's test dataset as ``(name, digest)``, to link test metrics to."""
    return {d.name: (d.name, d.digest) for role, d in datasets if role == TEST}
