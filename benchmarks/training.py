"""What does the Lightning task cost over a bare PyTorch loop, and how close to the machine's
peak does each network run? Side by side in one run.

    uv run python benchmarks/training.py [--batches 8] [--models cgnet,resu_senet,...]

For each network (``conf/model/*.yaml``), the same in-memory batches of the DataModule
(batch size 5, 88 x 88 px, ten bands) go through

- *Lightning*: ``SegmentationTask`` in a ``Trainer`` for one epoch (training step, epoch-mean
  logging, a checkpoint written at the end), and
- *bare loop*: the same network, dice loss and Adam in a plain ``for`` loop,

each after one warm-up batch. It prints samples/s of both and their ratio (the goal: Lightning
adds at most 5 %), the parameter count, the forward FLOPs of one 88 x 88 patch
(``torch.utils.flop_counter``), and the achieved share of the machine's peak: the training
step's FLOP rate (forward + backward taken as 3x the forward) over a large matrix product's,
timed in the same run.
"""

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from torch.utils.flop_counter import FlopCounterMode

from landslide.config import compose_config

ROOT = Path(__file__).resolve().parents[1]
MODELS = sorted(p.stem for p in (ROOT / "conf" / "model").glob("*.yaml"))


def matmul_flops_per_second(n: int = 2048, repeats: int = 5) -> float:
    """The machine's dense float32 rate: a large matrix product, best of ``repeats``."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best


def _timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def forward_flops(net: torch.nn.Module, bands: int, size: int) -> int:
    """FLOPs of one forward pass of one patch."""
    net.eval()  # one patch: batch norm in training mode needs more than one value
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.zeros(1, bands, size, size))
    net.train()
    return counter.get_total_flops()


def bare_loop(task: L.LightningModule, batches: list[dict]) -> float:
    """Seconds to train on ``batches`` (after the first) in a plain loop."""
    optimizer = task.configure_optimizers()
    task.train()

    def step(batch: dict) -> None:
        logits = task(batch["image"])
        loss = task.loss(logits.unsqueeze(1), batch["mask"].unsqueeze(1))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    step(batches[0])
    start = time.perf_counter()
    for batch in batches[1:]:
        step(batch)
    return time.perf_counter() - start


class _Timer(L.Callback):
    """Seconds from the end of the first training batch to the end of training (the epoch's
    logging and the checkpoint written at its end included)."""

    def on_train_batch_end(self, trainer: L.Trainer, *args: object, **kwargs: object) -> None:
        if trainer.global_step == 1:
            self.start = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.seconds = time.perf_counter() - self.start


def lightning_fit(task: L.LightningModule, batches: list[dict], out: Path) -> float:
    """Seconds to train on ``batches`` (after the first) through a Trainer."""
    timer = _Timer()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        limit_val_batches=0,
        logger=L.pytorch.loggers.CSVLogger(out),
        callbacks=[timer, L.pytorch.callbacks.ModelCheckpoint(dirpath=out)],
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=out,
    )
    loader = torch.utils.data.DataLoader(batches, batch_size=None)
    trainer.fit(task, train_dataloaders=loader)
    return timer.seconds


def main() -> None:
    """Measure every network both ways and print the table and ratios."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--batches", type=int, default=8, help="timed batches (+1 warm-up)")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated")
    args = parser.parse_args()

    cfg = compose_config([], root_dir=ROOT)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    loader = iter(datamodule.train_dataloader())
    batches = [next(loader) for _ in range(args.batches + 1)]
    samples = sum(len(b["image"]) for b in batches[1:])
    bands, size = len(datamodule.bands), int(cfg.data.patch_size)
    peak = matmul_flops_per_second()

    rows = []
    for model in args.models.split(","):
        model_cfg = compose_config([f"model={model}"], root_dir=ROOT)
        torch.manual_seed(0)
        task = instantiate(model_cfg.task, _recursive_=False)
        params = sum(p.numel() for p in task.parameters())
        flops = forward_flops(task.model, bands, size)
        bare_s = bare_loop(task, batches)
        torch.manual_seed(0)
        task = instantiate(model_cfg.task, _recursive_=False)
        with tempfile.TemporaryDirectory() as tmp:
            lightning_s = lightning_fit(task, batches, Path(tmp))
        achieved = 3 * flops * samples / bare_s / peak
        rows.append((model, params, flops, samples / bare_s, samples / lightning_s, achieved))

    print(
        f"{samples} samples ({args.batches} batches of {cfg.data.batch_size}, {size} px, "
        f"{bands} bands), torch threads {torch.get_num_threads()}, "
        f"matmul peak {peak / 1e9:.1f} GFLOP/s"
    )
    print(
        f"{'network':<12} {'parameters':>12} {'GFLOP/patch':>12} {'bare/s':>8} "
        f"{'lightning/s':>12} {'overhead':>9} {'of peak':>8}"
    )
    for model, params, flops, bare, lit, achieved in rows:
        print(
            f"{model:<12} {params:12,d} {flops / 1e9:12.2f} {bare:8.2f} {lit:12.2f} "
            f"{bare / lit - 1:9.1%} {achieved:8.1%}"
        )
    print("overhead: Lightning's time over the bare loop's, minus 1 (goal <= 5 %)")


if __name__ == "__main__":
    main()
