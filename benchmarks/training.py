"""What does the Lightning task cost over a bare PyTorch loop, how close to the machine's
peak does each network run, and which speed options pay? Side by side in one run.

    uv run python benchmarks/training.py [--seconds 8] [--rounds 3] [--models cgnet,...]
        [--device cpu|cuda|auto] [--options channels_last,bf16,compile] [--options-model M]

For each network (``conf/model/*.yaml``), the same in-memory batches of the DataModule
(batch size 5, 88 x 88 px, ten bands) go through

- *Lightning*: ``SegmentationTask`` in a ``Trainer`` for one epoch (training step, epoch-mean
  logging; checkpointing off, as it is timed apart), and
- *bare loop*: the same network, dice loss and Adam in a plain ``for`` loop,

``--rounds`` times each, alternating, each after one warm-up batch, with enough batches for
a pass to last ``--seconds`` (at least ``--batches``); the best round of each counts (the
least disturbed by the rest of the machine). The checkpoint the Trainer writes (weights
and Adam's moments, through the project's atomic writer) is timed apart, and the
overhead is given per step and per paper epoch (ib350j350: 126 training steps, at most two
checkpoints: the best and the last). It also prints the parameter count, the forward FLOPs
of one 88 x 88 patch (``torch.utils.flop_counter``), and the achieved share of the device's
peak: the training step's FLOP rate (forward + backward taken as 3x the forward) over a
large matrix product's, timed in the same run.

``--options`` times the training and test steps of ``--options-model`` with each speed option
against float32 in the default layout: ``channels_last`` (``task.channels_last=true``),
``bf16`` (autocast to bfloat16, ``trainer.precision=bf16-mixed``) and ``compile``
(``torch.compile``, ``compile=true``; its compilation time printed apart).
"""

import argparse
import math
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from common import (
    MODELS,
    ROOT,
    describe,
    make_task,
    median,
    on_device,
    pick_device,
    step_seconds,
    synchronize,
    timed,
    train_step,
)
from hydra.utils import instantiate
from torch.utils.flop_counter import FlopCounterMode

from landslide.checkpointing import AtomicCheckpointIO
from landslide.config import compose_config

#: A paper epoch of the default mix (ib350j350): 630 training samples in batches of 5.
PAPER_EPOCH_STEPS = 126
#: The most batches a pass takes (the DataModule's training set holds 126).
MAX_BATCHES = 120
#: Checkpoints written per epoch at most: the lowest validation loss and the last.
CHECKPOINTS_PER_EPOCH = 2


def matmul_flops_per_second(device: torch.device, n: int = 2048, repeats: int = 5) -> float:
    """The device's dense float32 rate: a large matrix product, best of ``repeats``."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b  # warm-up
    best = min(timed(lambda: a @ b, device) for _ in range(repeats))
    return 2 * n**3 / best


def forward_flops(net: torch.nn.Module, bands: int, size: int, device: torch.device) -> int:
    """FLOPs of one forward pass of one patch."""
    net.eval()  # one patch: batch norm in training mode needs more than one value
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.zeros(1, bands, size, size, device=device))
    net.train()
    return counter.get_total_flops()


def bare_loop(task: L.LightningModule, batches: list[dict], device: torch.device) -> float:
    """Seconds to train on ``batches`` (after the first) in a plain loop."""
    optimizer = task.configure_optimizers()
    task.train()
    train_step(task, optimizer, batches[0])
    return timed(lambda: [train_step(task, optimizer, b) for b in batches[1:]], device)


class _Timer(L.Callback):
    """Seconds from the end of the first training batch to the end of training."""

    def on_train_batch_end(self, trainer: L.Trainer, *args: object, **kwargs: object) -> None:
        if trainer.global_step == 1:
            synchronize(trainer.strategy.root_device)
            self.start = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        synchronize(trainer.strategy.root_device)
        self.seconds = time.perf_counter() - self.start


def lightning_fit(
    task: L.LightningModule, batches: list[dict], out: Path, device: torch.device
) -> tuple[float, float]:
    """Seconds to train on ``batches`` (after the first) through a Trainer, and seconds to
    write its checkpoint once."""
    timer = _Timer()
    trainer = L.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        max_epochs=1,
        limit_val_batches=0,
        logger=L.pytorch.loggers.CSVLogger(out),
        callbacks=[timer],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=out,
        plugins=[AtomicCheckpointIO()],
    )
    loader = torch.utils.data.DataLoader(batches, batch_size=None)
    trainer.fit(task, train_dataloaders=loader)
    checkpoint = timed(lambda: trainer.save_checkpoint(out / "timed.ckpt"), device)
    return timer.seconds, checkpoint


def option_steps(
    model: str, option: str, batch: dict, device: torch.device, steps: int
) -> tuple[float, float, float]:
    """:func:`~common.step_seconds` of ``model`` with ``option`` (``fp32`` for none), each
    set as its config knob sets it."""
    overrides = ["task.channels_last=true"] if option == "channels_last" else []
    task = make_task(model, device, overrides)
    if option == "compile":
        task.model.compile()  # as compile=true does in training
    return step_seconds(task, batch, device, steps, bf16=option == "bf16")


def main() -> None:
    """Measure every network both ways, and the options; print the tables and ratios."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--batches", type=int, default=8, help="least timed batches a pass")
    parser.add_argument("--seconds", type=float, default=8.0, help="least seconds a pass")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds, best kept")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--options", default="channels_last", help="comma-separated, or none")
    parser.add_argument("--options-model", default="resu_senet")
    parser.add_argument("--option-steps", type=int, default=3, help="timed steps per option")
    args = parser.parse_args()
    device = pick_device(args.device)

    cfg = compose_config([], root_dir=ROOT)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    pool = [on_device(b, device) for b in datamodule.train_dataloader()][: MAX_BATCHES + 1]
    bands, size = len(datamodule.bands), int(cfg.data.patch_size)
    peak = matmul_flops_per_second(device)

    rows = []
    for model in args.models.split(","):
        task = make_task(model, device)
        params = sum(p.numel() for p in task.parameters())
        flops = forward_flops(task.model, bands, size, device)
        # Fast networks get more batches, so that each pass lasts --seconds at least.
        step = bare_loop(make_task(model, device), pool[:3], device) / 2
        count = min(MAX_BATCHES, max(args.batches, math.ceil(args.seconds / step)))
        batches = pool[: count + 1]
        bare, lit, checkpoint = [], [], []
        for _ in range(args.rounds):
            bare.append(bare_loop(make_task(model, device), batches, device))
            with tempfile.TemporaryDirectory() as tmp:
                fit, ckpt = lightning_fit(make_task(model, device), batches, Path(tmp), device)
            lit.append(fit)
            checkpoint.append(ckpt)
        rows.append((model, params, flops, count, min(bare), min(lit), median(checkpoint)))

    print(
        f"device: {describe(device)}; matmul peak {peak / 1e9:.1f} GFLOP/s\n"
        f"batches of {cfg.data.batch_size} ({size} px, {bands} bands), at least "
        f"{args.batches} a pass and enough for {args.seconds:g} s; best of {args.rounds} "
        "alternating rounds"
    )
    print(
        f"{'network':<11} {'parameters':>11} {'GFLOP/patch':>11} {'batches':>7} {'bare/s':>8} "
        f"{'Lightning/s':>11} {'per step':>9} {'ckpt s':>7} {'per epoch':>9} {'of peak':>8}"
    )
    for model, params, flops, count, bare_s, lit_s, ckpt_s in rows:
        samples = count * int(cfg.data.batch_size)
        step_bare, step_lit = bare_s / count, lit_s / count
        epoch = (PAPER_EPOCH_STEPS * step_lit + CHECKPOINTS_PER_EPOCH * ckpt_s) / (
            PAPER_EPOCH_STEPS * step_bare
        )
        achieved = 3 * flops * samples / bare_s / peak
        print(
            f"{model:<11} {params:11,d} {flops / 1e9:11.2f} {count:7d} {samples / bare_s:8.2f} "
            f"{samples / lit_s:11.2f} {lit_s / bare_s - 1:9.1%} {ckpt_s:7.2f} "
            f"{epoch - 1:9.1%} {achieved:8.1%}"
        )
    print(
        "per step: Lightning's time over the bare loop's, minus 1; per epoch: the same over a "
        f"paper epoch ({PAPER_EPOCH_STEPS} steps) with {CHECKPOINTS_PER_EPOCH} checkpoint "
        "writes (goal <= 5 %)"
    )

    options = [o for o in args.options.split(",") if o and o != "none"]
    if options:
        batch = pool[1]
        base = option_steps(args.options_model, "fp32", batch, device, args.option_steps)
        print(f"\noptions on {args.options_model} (batch of {len(batch['image'])}):")
        print(
            f"{'option':<14} {'train s/step':>13} {'test s/step':>12} {'train x':>8} {'test x':>7}"
        )
        print(f"{'fp32':<14} {base[0]:13.4f} {base[1]:12.4f} {1:8.2f} {1:7.2f}")
        for option in options:
            train, test, first = option_steps(
                args.options_model, option, batch, device, args.option_steps
            )
            extra = f"  (first steps {first:.1f} s)" if option == "compile" else ""
            print(
                f"{option:<14} {train:13.4f} {test:12.4f} {base[0] / train:8.2f} "
                f"{base[1] / test:7.2f}{extra}"
            )
        print("x: speed-up over fp32 in the default layout (above 1 helps)")


if __name__ == "__main__":
    main()
