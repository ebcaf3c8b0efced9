"""What the benchmarks share: the networks, a device, and timed training and test steps.

Imported by the scripts beside it (``benchmarks/`` is on ``sys.path`` when one of them runs).
"""

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate

from landslide.config import compose_config

ROOT = Path(__file__).resolve().parents[1]
MODELS = sorted(p.stem for p in (ROOT / "conf" / "model").glob("*.yaml"))


def pick_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` or ``auto`` (CUDA when there is one)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here; use --device cpu")
    return torch.device(name)


def describe(device: torch.device) -> str:
    """The device in words, with the GPU's name or the CPU's torch threads."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    return f"CPU, torch with {torch.get_num_threads()} threads"


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a timer reads the work's end, not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(work: Callable[[], object], device: torch.device) -> float:
    """Seconds ``work`` takes on ``device``."""
    synchronize(device)
    start = time.perf_counter()
    work()
    synchronize(device)
    return time.perf_counter() - start


def make_task(
    model: str, device: torch.device, overrides: Sequence[str] = (), seed: int = 0
) -> L.LightningModule:
    """A fresh :class:`~landslide.task.SegmentationTask` of ``conf/model/<model>.yaml``, with
    ``overrides`` of ``conf/train.yaml`` (e.g. ``task.channels_last=true``)."""
    cfg = compose_config([f"model={model}", *overrides], root_dir=ROOT)
    torch.manual_seed(seed)
    task: L.LightningModule = instantiate(cfg.task, _recursive_=False)
    return task.to(device)


def on_device(batch: dict, device: torch.device) -> dict:
    """The image and mask of ``batch`` on ``device``."""
    return {key: batch[key].to(device) for key in ("image", "mask")}


def train_step(
    task: L.LightningModule, optimizer: torch.optim.Optimizer, batch: dict, bf16: bool = False
) -> None:
    """One training step as the task takes it: forward (autocast to bfloat16 if ``bf16``, as
    ``trainer.precision=bf16-mixed``), dice loss, backward, optimiser step."""
    with _autocast(batch, bf16):
        logits = task(batch["image"])
    loss = task.loss(logits.float().unsqueeze(1), batch["mask"].unsqueeze(1))
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()


def step_seconds(
    task: L.LightningModule, batch: dict, device: torch.device, steps: int = 3, bf16: bool = False
) -> tuple[float, float, float]:
    """Median seconds of ``task``'s training step and of its test step (the forward in
    inference mode, as the Trainer tests) on ``batch``, each after one warm-up, and the
    seconds of the two warm-ups (a compiled network compiles there)."""
    batch = on_device(batch, device)
    optimizer = task.configure_optimizers()
    task.train()
    train = [
        timed(lambda: train_step(task, optimizer, batch, bf16), device) for _ in range(steps + 1)
    ]
    task.eval()
    with torch.inference_mode(), _autocast(batch, bf16):
        test = [timed(lambda: task(batch["image"]), device) for _ in range(steps + 1)]
    return median(train[1:]), median(test[1:]), train[0] + test[0]


def _autocast(batch: dict, bf16: bool) -> torch.autocast:
    return torch.autocast(batch["image"].device.type, dtype=torch.bfloat16, enabled=bf16)


def median(values: list[float]) -> float:
    """The middle value (the upper of the two middle ones for an even count)."""
    return sorted(values)[len(values) // 2]
