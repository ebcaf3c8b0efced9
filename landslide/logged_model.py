"""A run's best weights as an MLflow model: loadable, registrable and servable in one line.

The Lightning checkpoint (``checkpoints/best.ckpt``) stays for resuming and for ``map.py``;
this is the form MLflow users expect: the PyTorch flavour of a
:class:`~landslide.models.serving.ProbabilityModel` (normalised bands in, probabilities out)
with a tensor signature, an input example, the package's code (so the weights load with the
code that trained them) and what a mapper must know as metadata: band names and order, the
normalisation and its statistics, threshold, patch size and training mix.

    mlflow.pyfunc.load_model("models:/<name>@<alias>").predict(bands)  # [N, C, H, W] float32
"""

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pytorch
import numpy as np
from mlflow.entities import Metric
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.types import Schema, TensorSpec
from mlflow.utils.time import get_current_time_millis

import landslide
from landslide.band_stats import BandStats
from landslide.mlflow_store import quiet_artifact_transfers
from landslide.models.serving import ProbabilityModel
from landslide.task import SegmentationTask

#: The logged model's name (its artifact folder in MLflow 3's model store).
MODEL_NAME = "model"

#: Side of the input example's square crop, px (any size maps: the networks pad to their
#: stride); small, because MLflow stores the example as JSON.
EXAMPLE_SIDE = 32

#: The run's params a model page shows (the run holds the whole config): what was trained,
#: on what, how.
MODEL_PARAMS = (
    "model.",
    "bands.",
    "domain_mix.",
    "seed",
    "task.lr",
    "task.threshold",
    "data.batch_size",
    "data.patch_size",
    "data.split",
    "data.world.generator_version",
    "trainer.max_epochs",
    "trainer.limit_train_batches",
)

#: Packages the pickled network needs when loaded (the package's own imports).
REQUIREMENTS = ("torch", "torchvision", "hydra-core", "numpy")


def signature(channels: int) -> ModelSignature:
    """Normalised bands ``[N, channels, H, W]`` float32 in, probability ``[N, H, W]`` out.

    The input is unnamed, so that MLflow hands the model an array, not a dict of arrays.
    """
    image = TensorSpec(np.dtype(np.float32), (-1, channels, -1, -1))
    probability = TensorSpec(np.dtype(np.float32), (-1, -1, -1), "probability")
    return ModelSignature(inputs=Schema([image]), outputs=Schema([probability]))


def model_metadata(
    bands: Sequence[str],
    stats: Mapping[str, BandStats],
    threshold: float,
    patch_size: int,
    mix: Mapping[str, int],
    network: str,
) -> dict[str, Any]:
    """What a mapper must know to feed the model and read its output.

    Args:
        bands: the input bands, in channel order.
        stats: each training domain's band statistics, restricted to ``bands``.
        threshold: probability above which a pixel is a landslide.
        patch_size: side of the training patches, px.
        mix: training samples per domain.
        network: the network's config name.
    """
    return {
        "bands": list(bands),
        "normalization": {
            "method": "minmax",
            "formula": "(band - min) / (max - min), per band, with the scene's own min and max",
            "training_statistics": {
                name: {
                    band: {"min": lo, "max": hi}
                    for band, lo, hi in zip(s.bands, s.minimum, s.maximum, strict=True)
                }
                for name, s in stats.items()
            },
        },
        "threshold": threshold,
        "patch_size": patch_size,
        "training_mix": dict(mix),
        "network": network,
        "input": f"float32 [N, {len(bands)}, H, W]: the bands above, normalised",
        "output": "float32 [N, H, W]: landslide probability",
    }


def input_example(image: np.ndarray) -> np.ndarray:
    """A real normalised sample ``[C, H, W]`` cropped to :data:`EXAMPLE_SIDE`, batched."""
    return np.ascontiguousarray(image[None, :, :EXAMPLE_SIDE, :EXAMPLE_SIDE], np.float32)


def log_model(
    client: mlflow.MlflowClient,
    run_id: str,
    checkpoint: str | Path,
    example: np.ndarray,
    metadata: Mapping[str, Any],
    test_metrics: Mapping[str, float],
    test_sets: Mapping[str, tuple[str, str]],
    step: int,
    register_as: str | None = None,
) -> ModelInfo:
    """Log the checkpoint's network as run ``run_id``'s MLflow model (and register it).

    The model is named after the run and carries its main params (:data:`MODEL_PARAMS`).
    The test metrics are logged linked to it and to the test set each came from; MLflow
    links the metrics the run logged at ``step`` (the kept checkpoint's validation loss).
    The network is read from the checkpoint afresh: the trained one may be compiled
    (``compile=true``) or channels-last.

    Args:
        client: the store's client.
        run_id: the training run.
        checkpoint: the best ``.ckpt`` of the run.
        example: an input example (:func:`input_example`).
        metadata: :func:`model_metadata`.
        test_metrics: ``test/<domain>/<metric>`` values, not yet logged to the run.
        test_sets: each domain's test dataset as ``(name, digest)``.
        step: the step the kept checkpoint's validation metrics were logged at.
        register_as: a registered model name, or None.
    """
    task = SegmentationTask.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True)
    model = ProbabilityModel(task.model).eval()
    run = client.get_run(run_id)
    # Created here rather than by log_model, which would put it in the fluent API's active
    # experiment instead of the run's.
    logged = client.create_logged_model(
        run.info.experiment_id,
        name=run.info.run_name,
        source_run_id=run_id,
        params={k: v for k, v in run.data.params.items() if k.startswith(MODEL_PARAMS)},
        model_type="semantic-segmentation",
    )
    package = Path(landslide.__file__).parent
    with fluent_store(client.tracking_uri), quiet_artifact_transfers():
        info = mlflow.pytorch.log_model(
            model,
            name=run.info.run_name,
            model_id=logged.model_id,
            run_id=run_id,
            # A pickled module runs on inputs of any size. MLflow's default, a torch.export
            # program, specialised the example's batch dimension when tried.
            serialization_format="pickle",
            signature=signature(example.shape[1]),
            input_example=example,
            metadata=dict(metadata),
            code_paths=[str(package)],
            pip_requirements=[f"{p}=={_release(p)}" for p in REQUIREMENTS],
            registered_model_name=register_as,
            step=step,
        )
    # After log_model, which links (logs again) every metric of the run at ``step``.
    link_metrics(client, run_id, logged.model_id, test_metrics, test_sets, step)
    return info


def link_metrics(
    client: mlflow.MlflowClient,
    run_id: str,
    model_id: str,
    metrics: Mapping[str, float],
    datasets: Mapping[str, tuple[str, str]],
    step: int,
) -> None:
    """Log ``test/<domain>/...`` metrics to the run, linked to a model and a test set.

    Args:
        client: the store's client.
        run_id: the training run.
        model_id: the logged model.
        metrics: ``test/<domain>/<metric>`` values.
        datasets: each domain's test dataset as ``(name, digest)``.
        step: the step to log them at.
    """
    timestamp = get_current_time_millis()
    linked = []
    for key, value in metrics.items():
        name, digest = datasets.get(key.split("/")[1], (None, None))
        linked.append(Metric(key, value, timestamp, step, model_id, name, digest))
    client.log_batch(run_id, metrics=linked)


@contextmanager
def fluent_store(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API (which ``log_model`` uses) at ``uri`` for the block."""
    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)  # type: ignore[arg-type]  # None: unset again


def _release(package: str) -> str:
    # The public release, without a local build tag such as +cpu: pip finds it anywhere.
    return version(package).split("+")[0]
