"""The LightningModule: metrics against hand computation, loss, checkpoint round trip."""

import math

import pytest
import torch

from landslide.errors import UnsafeLoadError
from landslide.metrics import landslide_metrics
from landslide.task import SegmentationTask

TINY_NET = {
    "_target_": "landslide.models.ResUSENet",
    "in_channels": 10,
    "num_classes": 1,
    "widths": [8, 16, 32, 64],
}


def test_metrics_equal_hand_computation() -> None:
    # A known confusion matrix: TP=6, FP=2, FN=3, TN=9.
    target = torch.tensor([1] * 6 + [0] * 2 + [1] * 3 + [0] * 9)
    probs = torch.tensor([0.9] * 6 + [0.7] * 2 + [0.2] * 3 + [0.1] * 9)
    tp, fp, fn, tn = 6, 2, 3, 9
    precision = tp / (tp + fp)
    recall = tp / (tp + fn)
    expected = {
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall),
        "mcc": (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)),
        "iou": tp / (tp + fp + fn),
    }
    metrics = landslide_metrics(threshold=0.5)
    # Two updates, as over two batches, must accumulate the confusion matrix.
    metrics.update(probs[:10], target[:10])
    metrics.update(probs[10:], target[10:])
    result = {k: float(v) for k, v in metrics.compute().items()}
    assert result == pytest.approx(expected, abs=1e-6)
    assert expected["f1"] == pytest.approx(0.705882, abs=1e-6)


def test_threshold_is_applied_to_probabilities() -> None:
    target = torch.tensor([1, 1, 0, 0])
    probs = torch.tensor([0.6, 0.4, 0.45, 0.1])
    strict = landslide_metrics(0.5)
    strict.update(probs, target)
    lenient = landslide_metrics(0.3)
    lenient.update(probs, target)
    assert float(strict.compute()["recall"]) == pytest.approx(0.5)
    assert float(lenient.compute()["recall"]) == pytest.approx(1.0)
    assert float(lenient.compute()["precision"]) == pytest.approx(2 / 3)


def test_dice_loss_is_zero_for_a_perfect_prediction_and_high_for_the_inverse() -> None:
    task = SegmentationTask(TINY_NET)
    mask = torch.zeros(2, 1, 16, 16)
    mask[:, :, 4:12, 4:12] = 1
    perfect = (mask * 2 - 1) * 50  # logits: +50 on landslides, -50 elsewhere
    assert float(task.loss(perfect, mask)) == pytest.approx(0.0, abs=1e-4)
    assert float(task.loss(-perfect, mask)) == pytest.approx(1.0, abs=1e-3)


def test_forward_and_checkpoint_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    task = SegmentationTask(TINY_NET, lr=1e-3, test_domains=["a", "b"])
    image = torch.rand(2, 10, 24, 24)
    assert task(image).shape == (2, 24, 24)
    assert set(task.test_metrics) == {"a", "b"}
    path = tmp_path / "task.ckpt"
    torch.save(
        {
            "state_dict": task.state_dict(),
            "hyper_parameters": dict(task.hparams),
            "pytorch-lightning_version": "2.6.0",
        },
        path,
    )
    loaded = SegmentationTask.load_from_checkpoint(path)
    task.eval()
    loaded.eval()
    torch.testing.assert_close(loaded(image), task(image))
    assert loaded.hparams["lr"] == 1e-3


@pytest.mark.parametrize("net", ["ResUSENet", "CGNet", "LANet", "MACUNet"])
def test_channels_last_computes_what_the_default_layout_computes(net: str) -> None:
    """task.channels_last=true keeps weights and inputs NHWC; results equal up to rounding,
    and its checkpoint's weights load into a default-layout task."""
    spec = {"_target_": f"landslide.models.{net}", "in_channels": 10}
    torch.manual_seed(0)
    plain = SegmentationTask(spec).eval()
    nhwc = SegmentationTask(spec, channels_last=True).eval()
    nhwc.load_state_dict(plain.state_dict())
    convs = [m.weight for m in nhwc.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    image = torch.rand(2, 10, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(nhwc(image), plain(image), rtol=1e-4, atol=1e-4)
    again = SegmentationTask(spec).eval()
    again.load_state_dict(nhwc.state_dict())
    with torch.inference_mode():
        torch.testing.assert_close(again(image), plain(image))


def test_the_optimiser_is_a_config_entry_and_a_foreign_one_is_refused() -> None:
    # The paper's Adam when none is given (checkpoints from before the entry hold none).
    adam = SegmentationTask(TINY_NET, lr=1e-3).configure_optimizers()
    assert type(adam) is torch.optim.Adam and adam.param_groups[0]["lr"] == 1e-3
    sgd_spec = {"_target_": "torch.optim.SGD", "_partial_": True, "momentum": 0.9}
    sgd = SegmentationTask(TINY_NET, lr=0.01, optimizer=sgd_spec).configure_optimizers()
    assert type(sgd) is torch.optim.SGD
    assert (sgd.param_groups[0]["lr"], sgd.param_groups[0]["momentum"]) == (0.01, 0.9)
    crafted = {"_target_": "torch.optim.os.system", "_partial_": True}
    with pytest.raises(UnsafeLoadError, match=r"optimizer\._target_=.*refused"):
        SegmentationTask(TINY_NET, optimizer=crafted).configure_optimizers()


def test_ignored_pixels_change_neither_loss_nor_metrics() -> None:
    """Unlabelled pixels (255) count for nothing: flipping every prediction on them leaves
    the dice loss and all five metrics unchanged, and a fully labelled batch scores as
    without the mask."""
    generator = torch.Generator().manual_seed(0)
    mask = (torch.rand(4, 16, 16, generator=generator) < 0.3).float()
    logits = torch.randn(4, 16, 16, generator=generator)
    ignored = torch.rand(4, 16, 16, generator=generator) < 0.4
    sparse = mask.masked_fill(ignored, 255)
    task = SegmentationTask(TINY_NET)

    def scores(logits: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        metrics = landslide_metrics()
        metrics.update(logits.sigmoid(), target.long())
        result = {k: float(v) for k, v in metrics.compute().items()}
        result["loss"] = float(task.loss(logits.unsqueeze(1), target.unsqueeze(1)))
        return result

    flipped = torch.where(ignored, -logits * 10, logits)
    assert scores(flipped, sparse) == scores(logits, sparse)
    assert scores(logits, sparse) != scores(logits, mask)
    # Only the labelled pixels count: the same as scoring them alone.
    labelled = ~ignored
    alone = scores(logits[labelled].reshape(1, 1, -1), mask[labelled].reshape(1, 1, -1))
    assert scores(logits, sparse) == pytest.approx(alone, abs=1e-5)


def test_a_nan_validation_loss_stops_the_run_with_one_line(tmp_path) -> None:
    """NaN inputs on labelled pixels make the loss NaN: the run stops at the end of the
    first validation instead of keeping a "best" checkpoint that predicts nothing."""
    import lightning as L
    from torch.utils.data import DataLoader

    from landslide.errors import TrainingDiverged

    def batches(nan: bool) -> DataLoader:
        image = torch.rand(4, 10, 32, 32)
        if nan:
            image[:, 0, :4, :4] = float("nan")
        mask = (torch.rand(4, 32, 32) > 0.5).float()
        items = [{"image": image[i], "mask": mask[i]} for i in range(4)]
        return DataLoader(items, batch_size=2)

    task = SegmentationTask(net=TINY_NET)
    trainer = L.Trainer(
        max_epochs=2,
        accelerator="cpu",
        default_root_dir=tmp_path,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    with pytest.raises(TrainingDiverged) as err:
        trainer.fit(task, batches(nan=False), batches(nan=True))
    assert str(err.value).startswith("val/loss is not finite at epoch 0:")
    assert "\n" not in str(err.value)
