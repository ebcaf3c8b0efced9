"""Does data ever wait? The training loader against the stock torchgeo path and against what
each network consumes, side by side in one run.

    uv run python benchmarks/data.py [--batches 40] [--workers 0] [--steps 3] [--device cpu]

Four loaders deliver batches of 88 x 88 patches (batch size 5, the same workers), all
normalised the same way, from the default world (generated on first use):

- *stock torchgeo*: the Iburi stack intersected with its mask (``RasterDataset &``), random
  windows from ``RandomGeoSampler``, ``stack_samples`` collation;
- *ours, first epoch*: the DataModule's training loader while it reads each pool window
  from the GeoTIFFs;
- *ours, later epochs*: the same loader once every sample was read (served from memory);
- and, for comparison, each network's training step (forward, dice loss, backward, Adam)
  on one of those batches: the rate at which it consumes samples, on ``--device`` (``cpu``
  by default; ``cuda``, or ``auto`` for CUDA when there is one). The loaders are CPU-side
  and measured alike on any device.

The ratios printed are the goals of issue 15: later epochs at least 20x the stock path and at
least 10x what the fastest network consumes.
"""

import argparse
import time
from collections.abc import Iterable, Iterator

import torch
from common import MODELS, ROOT, make_task, median, on_device, pick_device, timed, train_step
from hydra.utils import instantiate
from torch.utils.data import DataLoader
from torchgeo.datasets import stack_samples
from torchgeo.samplers import RandomGeoSampler

from landslide.config import compose_config
from landslide.data.datasets import domain_dataset


def samples_per_second(batches: Iterable[dict], count: int) -> tuple[float, list[dict]]:
    """Time drawing ``count`` batches; return samples/s and the batches."""
    drawn: list[dict] = []
    start = time.perf_counter()
    iterator: Iterator[dict] = iter(batches)
    for _ in range(count):
        try:
            drawn.append(next(iterator))
        except StopIteration:
            break
    seconds = time.perf_counter() - start
    return sum(len(b["image"]) for b in drawn) / seconds, drawn


def consumption(model: str, batch: dict, steps: int, device: torch.device) -> tuple[float, int]:
    """Samples/s of ``model``'s training step on ``batch`` on ``device`` (median of
    ``steps`` after a warm-up; the batch is moved there first, not timed), and its
    parameter count."""
    task = make_task(model, device)
    optimizer = task.configure_optimizers()
    task.train()
    batch = on_device(batch, device)
    times = [timed(lambda: train_step(task, optimizer, batch), device) for _ in range(steps + 1)]
    return len(batch["image"]) / median(times[1:]), sum(p.numel() for p in task.parameters())


def main() -> None:
    """Measure the four loaders and the networks, print the table and the ratios."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--batches", type=int, default=40, help="batches timed per loader")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per network")
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="cpu",
        help="where the networks' training steps run (auto: cuda if available); default cpu",
    )
    args = parser.parse_args()
    device = pick_device(args.device)

    cfg = compose_config([f"data.num_workers={args.workers}"], root_dir=ROOT)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    size, batch_size = int(cfg.data.patch_size), int(cfg.data.batch_size)

    stock_set = domain_dataset(datamodule.files("iburi"), datamodule.bands)
    sampler = RandomGeoSampler(stock_set, size=size, length=args.batches * batch_size)
    stock = DataLoader(
        stock_set,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=stack_samples,
        num_workers=args.workers,
    )
    rates = {"stock torchgeo": samples_per_second(stock, args.batches)[0]}

    loader = datamodule.train_dataloader()
    rates["ours, first epoch"], batches = samples_per_second(loader, args.batches)
    for _ in loader:  # finish the epoch: every training sample has now been read once
        pass
    rates["ours, later epochs"] = samples_per_second(loader, args.batches)[0]

    nets = {}
    for model in MODELS:
        rate, params = consumption(model, batches[0], args.steps, device)
        nets[model] = (rate, params)

    print(
        f"patch {size} px, batch size {batch_size}, {args.workers} loader workers, "
        f"torch threads {torch.get_num_threads()}, {len(datamodule.bands)} bands"
    )
    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    print(f"networks' training steps on {device.type}{gpu}; loaders on the CPU")
    print(f"{'loader':<22} {'samples/s':>10}")
    for name, rate in rates.items():
        print(f"{name:<22} {rate:10.1f}")
    print(f"{'network (train step)':<22} {'samples/s':>10} {'parameters':>12}")
    for model, (rate, params) in nets.items():
        print(f"{model:<22} {rate:10.1f} {params:12,d}")
    fastest = max(nets, key=lambda m: nets[m][0])
    later = rates["ours, later epochs"]
    print(f"later epochs / stock torchgeo : {later / rates['stock torchgeo']:8.1f}  (goal >= 20)")
    first = rates["ours, first epoch"]
    print(f"first epoch / stock torchgeo  : {first / rates['stock torchgeo']:8.1f}")
    print(f"later epochs / {fastest:<14} : {later / nets[fastest][0]:8.1f}  (goal >= 10)")


if __name__ == "__main__":
    main()
