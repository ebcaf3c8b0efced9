"""Does patch extraction slow training down? Times, side by side in one run, the
DataModule's training loader (torchgeo windows read from the GeoTIFFs) and one ResU-SENet
training step on the same batch size, and prints the ratio.

    uv run python benchmarks/patch_loading.py [--batches 40] [--workers 0]
"""

import argparse
import time
from pathlib import Path

import torch
from hydra.utils import instantiate

from landslide.config import compose_config

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()

    cfg = compose_config([f"data.num_workers={args.workers}"], root_dir=ROOT)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()

    start = time.perf_counter()
    batches = []
    for batch in loader:
        batches.append(batch)
        if len(batches) == args.batches:
            break
    load_s = (time.perf_counter() - start) / len(batches)

    torch.manual_seed(0)
    task = instantiate(cfg.task, _recursive_=False)
    optimizer = task.configure_optimizers()
    task.train()
    times = []
    for batch in batches[: min(10, len(batches))]:
        start = time.perf_counter()
        logits = task(batch["image"])
        loss = task.loss(logits.unsqueeze(1), batch["mask"].unsqueeze(1))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    step_s = sorted(times[1:])[len(times[1:]) // 2]  # median, first step is warm-up

    size = cfg.data.batch_size
    print(
        f"batch size {size}, {args.workers} loader workers, torch threads {torch.get_num_threads()}"
    )
    print(f"patch loading : {load_s * 1e3:8.1f} ms/batch  ({size / load_s:7.1f} patches/s)")
    print(f"training step : {step_s * 1e3:8.1f} ms/batch  ({size / step_s:7.1f} patches/s)")
    print(f"loading / step: {load_s / step_s:8.3f}")


if __name__ == "__main__":
    main()
