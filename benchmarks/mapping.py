"""How much does mapping add to the network, and does memory grow with the scene?

Side by side in one run, each measurement in a fresh process so peak memory is its own:

1. ``forward``: the bare network over the windows of the default world's Palu (the same
   window size, overlap, batch and pixels as the map, tensors made in memory: no reading,
   blending, tracing or writing);
2. ``map 1x``: :func:`landslide.mapping.map_scene` over the same scene, everything included
   (reading, normalising, blending, polygons, Cloud-Optimized GeoTIFFs, overview);
3. ``map 4x``: the same over a scene of four times the area (Palu tiled 2 x 2).

Prints pixels and km² per second, the ratio forward/map (1.0: mapping adds nothing) and
the peak-memory ratio 4x/1x (1.0: memory does not grow with the scene).

    uv run python benchmarks/mapping.py [--model RUN|CKPT] [--device auto] [--full-size]

``--model`` takes a checkpoint or an MLflow run name/id of ``mlruns/``; without it the
network has random weights and the threshold is set so that 5 % of the pixels are
landslides, which gives the tracing a realistic load. ``--full-size`` adds the full-size
Palu (4988² px, generated once under ``data/full_world/palu``).
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
import torch
from hydra.utils import instantiate
from rasterio.windows import Window

from landslide.band_stats import BandStats
from landslide.config import compose_config
from landslide.layout import DomainFiles
from landslide.mapping import MapSettings, TrainedModel, map_scene, open_scene
from landslide.mapping.predict import predict_batch, probability_strips, resolve_device
from landslide.mapping.windows import WindowGrid

ROOT = Path(__file__).resolve().parents[1]

WORK = ROOT / "outputs" / "benchmarks" / "mapping"


def load(model_ref: str | None, device: str) -> TrainedModel:
    """The model to benchmark: a run or checkpoint, or random ResU-SENet weights."""
    if model_ref:
        import mlflow

        from landslide.mapping.runs import resolve_model

        client = mlflow.MlflowClient(f"sqlite:///{ROOT}/mlruns/mlflow.db")
        return resolve_model(model_ref, client, ["landslide"], Path(tempfile.mkdtemp())).model
    cfg = compose_config([], root_dir=ROOT)
    torch.manual_seed(0)
    task = instantiate(cfg.task, _recursive_=False, bands=list(cfg.data.bands)).eval()
    return TrainedModel(task, tuple(cfg.data.bands), "minmax", 0.5, "random-resu_senet", Path("-"))


def random_threshold(model: TrainedModel, scene_dir: Path, device: str) -> float:
    """The probability above which 5 % of a few windows' pixels lie (random weights)."""
    scene = open_scene(scene_dir)
    probabilities = []
    for _, strip in probability_strips(model, scene, 256, 0, 4, device, progress=False):
        probabilities.append(strip[np.isfinite(strip)])
        break
    return float(np.quantile(np.concatenate(probabilities), 0.95))


def child(args: argparse.Namespace) -> None:
    """One measurement, printed as JSON on the last line."""
    model = load(args.model, args.device)
    scene = open_scene(args.scene)
    settings = MapSettings(
        window=args.window,
        overlap=args.overlap,
        batch_size=args.batch_size,
        device=args.device,
        threshold=args.threshold,
        progress=False,
    )
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.what == "forward":
        grid = WindowGrid(scene.height, scene.width, args.window, args.overlap)
        device = resolve_device(args.device)
        model.task.to(device)
        images = torch.rand(args.batch_size, len(model.bands), args.window, args.window)
        images = images.to(device)
        predict_batch(model, images)  # warm-up
        windows = len(grid)
        start = time.perf_counter()
        for first in range(0, windows, args.batch_size):
            n = min(args.batch_size, windows - first)
            predict_batch(model, images[:n]).cpu()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    else:
        # Warm the network up as the forward measurement does.
        device = resolve_device(args.device)
        model.task.to(device)
        predict_batch(model, torch.rand(1, len(model.bands), 64, 64, device=device))
        start = time.perf_counter()
        result = map_scene(model, scene, WORK / "maps" / Path(args.scene).name, settings)
        seconds = time.perf_counter() - start
        assert result.summary["scene"]["width"] == scene.width
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "pixels": scene.width * scene.height,
                "km2": scene.area_km2,
                "peak_rss_mib": rss,
                "rss_before_mib": rss_before,
            }
        )
    )


def tiled_scene(source: Path, target: Path, times: int = 2) -> Path:
    """A scene of ``times``² the area: the source stack tiled, written window by window."""
    files, out = DomainFiles(source), DomainFiles(target)
    if out.stack.is_file():
        return target
    target.mkdir(parents=True, exist_ok=True)
    with rasterio.open(files.stack) as src:
        profile = src.profile | {
            "driver": "GTiff",
            "width": src.width * times,
            "height": src.height * times,
            "tiled": True,
            "blockxsize": 256,
            "blockysize": 256,
            "compress": "deflate",
        }
        with rasterio.open(out.stack, "w", **profile) as dst:
            for i in range(times):
                for j in range(times):
                    for _, window in src.block_windows(1):
                        placed = Window(
                            window.col_off + j * src.width,
                            window.row_off + i * src.height,
                            window.width,
                            window.height,
                        )
                        dst.write(src.read(window=window), window=placed)
            dst.descriptions = src.descriptions
    BandStats.load(files.stats).save(out.stats)
    return target


def unlabelled(source: Path, target: Path) -> Path:
    """The scene without its reference, so both sizes do the same work."""
    files, out = DomainFiles(source), DomainFiles(target)
    target.mkdir(parents=True, exist_ok=True)
    for name in ("stack", "stats"):
        link = getattr(out, name)
        if not link.exists():
            link.symlink_to(getattr(files, name).resolve())
    return target


def default_palu() -> Path:
    cfg = compose_config([], root_dir=ROOT)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    return datamodule.files("palu").root


def full_size_palu() -> Path:
    from omegaconf import OmegaConf

    from landslide.world import WorldParams, generate_domain, simulation_seed

    target = ROOT / "data" / "full_world" / "palu"
    if not DomainFiles(target).stack.is_file():
        cfg = OmegaConf.load(ROOT / "conf" / "domain" / "palu.yaml")
        size = WorldParams.from_mapping(cfg.world).full_size_px()
        generate_domain(cfg, cfg.world, target, size, simulation_seed(0, "palu"))
    return target


def measure(what: str, scene: Path, args: argparse.Namespace, threshold: float) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        what,
        "--scene",
        str(scene),
        "--window",
        str(args.window),
        "--overlap",
        str(args.overlap),
        "--batch-size",
        str(args.batch_size),
        "--device",
        args.device,
        "--threshold",
        str(threshold),
    ]
    if args.model:
        command += ["--model", args.model]
    out = subprocess.run(command, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{what} on {scene} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="checkpoint or MLflow run name/id")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--full-size", action="store_true", help="also map full-size Palu")
    parser.add_argument("--child", choices=("forward", "map"), dest="what")
    parser.add_argument("--scene")
    parser.add_argument("--threshold", type=float, default=None)
    args = parser.parse_args()
    if args.what:
        child(args)
        return

    palu = unlabelled(default_palu(), WORK / "palu_x1")
    palu4 = tiled_scene(palu, WORK / "palu_x4")
    model = load(args.model, args.device)
    threshold = model.threshold if args.model else random_threshold(model, palu, args.device)
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"model {model.name}, device {device} ({name}), torch threads {torch.get_num_threads()}, "
        f"window {args.window}, overlap {args.overlap}, batch {args.batch_size}, "
        f"threshold {threshold:.4f}"
    )
    rows = {
        "forward 1x": measure("forward", palu, args, threshold),
        "map 1x": measure("map", palu, args, threshold),
        "map 4x": measure("map", palu4, args, threshold),
    }
    if args.full_size:
        rows["map full-size"] = measure(
            "map", unlabelled(full_size_palu(), WORK / "palu_full"), args, threshold
        )
    print(f"{'':14} {'Mpx':>7} {'km2':>8} {'s':>8} {'Mpx/s':>7} {'km2/s':>7} {'peak MiB':>9}")
    for label, r in rows.items():
        print(
            f"{label:14} {r['pixels'] / 1e6:7.2f} {r['km2']:8.1f} {r['seconds']:8.1f} "
            f"{r['pixels'] / 1e6 / r['seconds']:7.3f} {r['km2'] / r['seconds']:7.2f} "
            f"{r['peak_rss_mib']:9.0f}"
        )
    forward, one, four = rows["forward 1x"], rows["map 1x"], rows["map 4x"]
    print(
        f"throughput ratio forward/map (1x): {forward['seconds'] / one['seconds']:.3f} "
        "(goal >= 0.8)"
    )
    print(
        f"peak memory ratio map 4x/1x: {four['peak_rss_mib'] / one['peak_rss_mib']:.3f} "
        "(goal <= 1.1)"
    )
    grown = four["peak_rss_mib"] - four["rss_before_mib"]
    base = one["peak_rss_mib"] - one["rss_before_mib"]
    print(f"memory added by mapping, 1x: {base:.0f} MiB, 4x: {grown:.0f} MiB")


if __name__ == "__main__":
    main()
