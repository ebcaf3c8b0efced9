"""Checkpoints and stored configs: this project's load; foreign code is refused before it runs."""

import contextlib
import os
import re
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from landslide.errors import DataError, UnsafeLoadError
from landslide.mapping.errors import MappingError
from landslide.mapping.model import load_model
from landslide.safe_loading import check_trusted, instantiate_trusted, load_checkpoint
from landslide.task import SegmentationTask

TINY_NET = {
    "_target_": "landslide.models.ResUSENet",
    "in_channels": 3,
    "num_classes": 1,
    "widths": [8, 16, 32, 64],
}
BANDS = ["post_red", "post_green", "post_blue"]


def save_task(path: Path, **hparams: Any) -> SegmentationTask:
    """A checkpoint written by Lightning, as ``train.py``'s ModelCheckpoint writes it."""
    task = SegmentationTask(TINY_NET, bands=BANDS, **hparams)
    trainer = L.Trainer(logger=False, enable_checkpointing=False, max_epochs=0)
    trainer.strategy.connect(task)
    trainer.save_checkpoint(path)
    return task


def craft(tmp_path: Path, net: dict[str, Any]) -> Path:
    """A real checkpoint whose network spec is replaced: plain values, so weights-only
    unpickling accepts it and only the target check stands in the way."""
    good = tmp_path / "good.ckpt"
    save_task(good)
    checkpoint = torch.load(good, weights_only=True)
    checkpoint["hyper_parameters"]["net"] = net
    path = tmp_path / "crafted.ckpt"
    torch.save(checkpoint, path)
    return path


def attacks(marker: Path) -> dict[str, dict[str, Any]]:
    """Specs that create ``marker`` when instantiated."""
    return {
        "os.system": {"_target_": "os.system", "_args_": [f"touch '{marker}'"]},
        "builtins.exec": {"_target_": "builtins.exec", "_args_": [f"open({str(marker)!r}, 'w')"]},
        "builtins.open": {"_target_": "builtins.open", "_args_": [str(marker), "w"]},
        # Starts with a trusted package, then walks to torch.save through a module's import.
        "through a trusted module": {
            "_target_": "landslide.models.resunet.torch.save",
            "_args_": [{}, str(marker)],
        },
        "nested in a trusted one": {
            **TINY_NET,
            "act": {"_target_": "builtins.open", "_args_": [str(marker), "w"]},
        },
    }


ATTACKS = list(attacks(Path("x")))
# Hydra's own target policy refuses these (with a multi-line message); it runs the others.
HYDRA_BLOCKS = {"os.system", "builtins.exec"}


def test_a_checkpoint_of_this_project_loads_weights_only(tmp_path: Path) -> None:
    path = tmp_path / "rgb.ckpt"
    task = save_task(path, threshold=0.4)
    checkpoint = load_checkpoint(path)
    assert checkpoint["hyper_parameters"]["net"] == TINY_NET
    loaded = SegmentationTask.load_from_checkpoint(path, weights_only=True)
    model = load_model(path)
    for other in (loaded, model.task):
        for a, b in zip(other.state_dict().values(), task.state_dict().values(), strict=True):
            assert torch.equal(a, b)
    assert model.bands == tuple(BANDS) and model.threshold == 0.4


def test_a_checkpoint_with_optimiser_state_loads_weights_only(tmp_path: Path) -> None:
    # What ModelCheckpoint writes during training and tracking.log_weights reads.
    task = SegmentationTask(TINY_NET, bands=BANDS)
    optimiser = task.configure_optimizers()
    task(torch.rand(2, 3, 32, 32)).mean().backward()
    optimiser.step()
    path = tmp_path / "last.ckpt"
    torch.save(
        {
            "state_dict": task.state_dict(),
            "hyper_parameters": dict(task.hparams),
            "optimizer_states": [optimiser.state_dict()],
            "lr_schedulers": [],
            "pytorch-lightning_version": L.__version__,
        },
        path,
    )
    assert load_checkpoint(path)["optimizer_states"][0]["param_groups"][0]["lr"] == 1e-4


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_foreign_target_is_refused_before_anything_runs(tmp_path: Path, attack: str) -> None:
    control, marker = tmp_path / "control", tmp_path / "marker"
    if attack not in HYDRA_BLOCKS:
        # Hydra runs the spec when instantiated unchecked: the refusals below matter.
        with contextlib.suppress(InstantiationException):  # the nested one fails after opening
            instantiate(attacks(control)[attack])
        assert control.exists()

    path = craft(tmp_path, attacks(marker)[attack])
    target = "builtins.open" if attack.startswith("nested") else attacks(marker)[attack]["_target_"]
    key = "net.act._target_" if attack.startswith("nested") else "net._target_"
    with pytest.raises(UnsafeLoadError, match=rf"^{key}='{target}' is not a class of") as err:
        SegmentationTask.load_from_checkpoint(path)
    assert "\n" not in str(err.value) and "train.py" in str(err.value)
    where = re.escape(str(path))
    with pytest.raises(UnsafeLoadError, match=rf"^{where}: hyper_parameters\.{key}='{target}'"):
        load_checkpoint(path)
    with pytest.raises(MappingError, match=rf"^model={where}: .*{key}='{target}'") as err:
        load_model(path)
    assert "\n" not in str(err.value)
    assert not marker.exists()


def test_pickled_code_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "marker"

    class Payload:
        def __reduce__(self) -> tuple:
            return os.system, (f"touch '{marker}'",)

    path = tmp_path / "pickled.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"net": Payload()}}, path)
    with pytest.raises(UnsafeLoadError, match=r": holds posix\.system, not only weights"):
        load_checkpoint(path)
    with pytest.raises(MappingError, match="holds posix.system") as err:
        load_model(path)
    assert "\n" not in str(err.value)
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncated", "empty", "text"])
def test_a_damaged_checkpoint_gives_one_line(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "best.ckpt"
    save_task(path)
    if damage == "truncated":
        os.truncate(path, path.stat().st_size // 2)
    else:
        path.write_bytes(b"" if damage == "empty" else b"not a checkpoint")
    where = re.escape(str(path))
    with pytest.raises(
        DataError, match=rf"^{where}: not a readable landslide checkpoint \("
    ) as err:
        load_checkpoint(path)
    assert "\n" not in str(err.value) and str(err.value).endswith("this project's train.py")
    with pytest.raises(MappingError, match="not a readable landslide checkpoint") as err:
        load_model(path)
    assert "\n" not in str(err.value)


def test_a_stored_data_config_is_checked_like_a_checkpoint(tmp_path: Path) -> None:
    # A run's config.yaml, as selection.rank_runs reads it.
    marker = tmp_path / "marker"
    cfg = OmegaConf.create(
        {
            "data": {
                "_target_": "landslide.data.datamodule.LandslideDataModule",
                "root": str(tmp_path),
                "domains": {"alpha": {"role": "known", "world": "${evil}"}},
                "mix": {"alpha": 10},
            },
            "evil": {"_target_": "builtins.open", "_args_": [str(marker), "w"]},
        }
    )
    with pytest.raises(
        UnsafeLoadError,
        match=r"^run x config.yaml: data\.domains\.alpha\.world\._target_='builtins\.open'",
    ):
        instantiate_trusted(cfg.data, "data", "run x config.yaml: ")
    cfg.evil = {"role": "plain"}
    datamodule = instantiate_trusted(cfg.data, "data", "run x config.yaml: ")
    assert type(datamodule).__name__ == "LandslideDataModule"
    with pytest.raises(UnsafeLoadError, match=r"^data\._target_='os\.system'"):
        check_trusted({"_target_": "os.system"}, "data")
    assert not marker.exists()
