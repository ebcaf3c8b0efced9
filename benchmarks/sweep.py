"""How long does a sweep take with serial against parallel jobs on one device, and how long
would every paper table with three seeds take at the paper's budget? Side by side in one run.

    uv run python benchmarks/sweep.py [--experiment table6] [--jobs 1,2] [--train-batches 4]
        [--trainer quick] [--accelerator cpu|gpu] [--seeds 3]

1. *Serial against parallel.* ``train.py -m experiment=<experiment>`` runs at a fixed short
   budget (one epoch of ``--train-batches`` training batches, a few validation and test
   batches) once per entry of ``--jobs``: 1 is Hydra's basic launcher (one process, the jobs
   one after another, as ``train.py -m`` runs by default), N > 1 the joblib launcher with N
   jobs in parallel on the same device (``hydra/launcher=joblib hydra.launcher.n_jobs=N``;
   joblib gives each job ``cores // N`` CPU threads). Each launch writes a fresh MLflow store
   and must finish every job. It prints each launch's wall time and its speed-up over serial.
2. *The paper budget, projected.* Each network's training step and test step (batch size 5)
   are timed on the device in this process; every run of the four paper experiments
   (``table6``, ``mixes``, ``table10``, ``extreme_ratios``; a setting shared by two of them
   runs once, as the multirun skips complete settings) with ``--seeds`` seeds, and of the
   ratio sweep with its own three seeds, is projected from them: ``trainer=paper`` epochs of
   its training and validation batches, its test batches, plus each job's fixed cost
   (start-up, data set-up, checkpoints, MLflow) as measured in the serial launch. Printed
   serial, and at the best measured parallel speed-up, against the goals (one hour; two for
   the ratio sweep).
"""

import argparse
import itertools
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import mlflow
from common import ROOT, describe, make_task, pick_device, step_seconds
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate
from omegaconf import DictConfig

from landslide.config import compose_config
from landslide.data.datamodule import LandslideDataModule
from landslide.data.sampling import validation_size
from landslide.lifecycle import is_sweep

PAPER_EXPERIMENTS = ("table6", "mixes", "table10", "extreme_ratios")
RATIO_SWEEP = "ratio_sweep"
#: Validation and test batches of the short budget (per test domain).
SHORT_VAL_BATCHES = 2
SHORT_TEST_BATCHES = 2


@dataclass(frozen=True)
class Setting:
    """One training run of a sweep: what it trains and how many batches it takes."""

    model: str
    mix: tuple[tuple[str, int], ...]
    seed: int
    train_batches: int
    val_batches: int
    test_batches: int


def sweep_settings(experiment: str, seeds: int, datamodule: LandslideDataModule) -> set[Setting]:
    """Every run of ``experiment`` at the paper budget: its swept values, and ``seeds`` seeds
    from the config's seed on where it does not sweep the seed itself."""
    cfg = compose_config([f"experiment={experiment}"], root_dir=ROOT)
    parser = OverridesParser.create()
    params = HydraConfig.get().sweeper.params or {}
    swept = [
        [f"{o.key_or_group}={v}" for v in o.sweep_string_iterator()]
        for o in parser.parse_overrides([f"{k}={v}" for k, v in params.items()])
    ]
    if "seed" not in params:
        swept.append([f"seed={cfg.seed + i}" for i in range(seeds)])
    settings = set()
    for choice in itertools.product(*swept):
        run = compose_config([f"experiment={experiment}", *choice], root_dir=ROOT)
        settings.add(_setting(run, datamodule))
    return settings


def _setting(cfg: DictConfig, datamodule: LandslideDataModule) -> Setting:
    batch = int(cfg.data.batch_size)
    mix = {name: int(count) for name, count in cfg.data.mix.items()}
    val = {n: validation_size(c, float(cfg.data.val_fraction)) for n, c in mix.items()}
    train = sum(mix.values()) - sum(val.values())
    tests = [len(pool.test) for pool in datamodule.pools.values()]
    return Setting(
        model=str(cfg.model.name),
        mix=tuple(sorted(mix.items())),
        seed=int(cfg.seed),
        train_batches=math.ceil(train / batch),
        val_batches=math.ceil(sum(val.values()) / batch),
        test_batches=sum(math.ceil(n / batch) for n in tests),
    )


def launch(
    experiment: str, jobs: int, overrides: list[str], data_dir: Path, scratch: Path
) -> tuple[float, int]:
    """Run ``train.py -m experiment=<experiment>`` with ``jobs`` parallel jobs in a fresh
    folder; return its wall time and its number of finished runs."""
    scratch.mkdir(parents=True)
    launcher = [] if jobs == 1 else ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}"]
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        f"experiment={experiment}",
        *overrides,
        *launcher,
        f"paths.data_dir={data_dir}",
        f"hydra.sweep.dir={scratch / 'multirun'}",
    ]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    log = scratch / "train.log"
    start = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(command, cwd=scratch, env=env, stdout=out, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        tail = log.read_text().splitlines()[-15:]
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n" + "\n".join(tail))
    client = mlflow.MlflowClient(f"sqlite:///{scratch / 'mlruns' / 'mlflow.db'}")
    experiment_ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiment_ids)
    return wall, sum(run.info.status == "FINISHED" and not is_sweep(run) for run in runs)


def run_seconds(setting: Setting, epochs: int, steps: dict[str, tuple[float, float]]) -> float:
    """The network time of ``setting`` at ``epochs`` epochs from measured step times."""
    train, test = steps[setting.model]
    return epochs * (setting.train_batches * train + setting.val_batches * test) + (
        setting.test_batches * test
    )


def main() -> None:
    """Launch the sweep serial and parallel, time the steps, print the tables and ratios."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--experiment", default="table6", help="the experiment launched")
    parser.add_argument("--jobs", default="1,2", help="parallel jobs per launch, e.g. 1,2,4")
    parser.add_argument("--train-batches", type=int, default=4, help="per job (one epoch)")
    parser.add_argument(
        "--trainer", default=None, help="launch at this trainer= profile (e.g. quick) instead"
    )
    parser.add_argument("--accelerator", default="cpu", choices=["cpu", "gpu"])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per setting, projected")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per network")
    args = parser.parse_args()
    jobs = [int(n) for n in args.jobs.split(",")]
    device = pick_device("cuda" if args.accelerator == "gpu" else "cpu")

    cfg = compose_config([], root_dir=ROOT)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()  # the default world, generated once before anything is timed
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    data_dir = Path(cfg.paths.data_dir)

    launched = sweep_settings(args.experiment, 1, datamodule)
    budget = [
        f"trainer={args.accelerator}",  # the profiles trainer=cpu and trainer=gpu
        "trainer.max_epochs=1",
        f"++trainer.limit_train_batches={args.train_batches}",
        f"++trainer.limit_val_batches={SHORT_VAL_BATCHES}",
        f"++trainer.limit_test_batches={SHORT_TEST_BATCHES}",
        "trainer.enable_progress_bar=false",
    ]
    train_batches, val_batches, test_batches = (
        args.train_batches,
        SHORT_VAL_BATCHES,
        SHORT_TEST_BATCHES,
    )
    if args.trainer:  # a profile's own budget, e.g. trainer=quick
        budget = [f"trainer={args.trainer}", "trainer.enable_progress_bar=false"]
        profile = compose_config(budget, root_dir=ROOT).trainer
        limits = (
            profile.limit_train_batches,
            profile.limit_val_batches,
            profile.limit_test_batches,
        )
        if profile.max_epochs != 1 or not all(isinstance(n, int) for n in limits):
            raise SystemExit(f"--trainer {args.trainer}: needs 1 epoch and batch counts as limits")
        train_batches, val_batches, test_batches = limits
    walls: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in jobs:
            walls[n], finished = launch(
                args.experiment, n, budget, data_dir, Path(tmp) / f"jobs{n}"
            )
            if finished != len(launched):
                raise SystemExit(f"{n} jobs: {finished} of {len(launched)} runs finished")
            print(f"launched {args.experiment} with {n} job(s): {walls[n]:.1f} s", flush=True)

    settings = {exp: sweep_settings(exp, args.seeds, datamodule) for exp in PAPER_EXPERIMENTS}
    paper = set().union(*settings.values())
    ratio = sweep_settings(RATIO_SWEEP, args.seeds, datamodule)
    models = sorted({s.model for s in paper | ratio | launched})
    steps = {m: step_seconds(make_task(m, device), batch, device, args.steps)[:2] for m in models}

    # A job's fixed cost: the serial launch's wall time less its network time.
    n_tests = len(datamodule.test_domains)
    short = [
        # limit_test_batches holds for each test domain's loader
        Setting(s.model, s.mix, s.seed, train_batches, val_batches, test_batches * n_tests)
        for s in launched
    ]
    serial = walls.get(1)
    network = sum(run_seconds(s, 1, steps) for s in short)
    per_job = (serial - network) / len(short) if serial is not None else 0.0
    epochs = int(compose_config(["trainer=paper"], root_dir=ROOT).trainer.max_epochs)
    speedup = max(serial / wall for wall in walls.values()) if serial is not None else 1.0
    best = max(walls, key=lambda n: serial / walls[n]) if serial is not None else 1

    print(f"\ndevice: {describe(device)}")
    print(
        f"short budget{f' (trainer={args.trainer})' if args.trainer else ''}: "
        f"{args.experiment}, {len(launched)} jobs of 1 epoch, {train_batches} training, "
        f"{val_batches} validation and {test_batches} test batches per domain"
    )
    print(f"{'jobs':>4} {'launcher':>8} {'wall s':>8} {'speed-up':>9}")
    for n, wall in walls.items():
        ratio_text = f"{serial / wall:9.2f}" if serial is not None else f"{'-':>9}"
        print(f"{n:4d} {'basic' if n == 1 else 'joblib':>8} {wall:8.1f} {ratio_text}")
    if serial is not None:
        print(
            f"serial: {network:.1f} s of network steps, {per_job:.1f} s fixed cost per job "
            "(start-up, data, checkpoints, MLflow)"
        )

    print(f"\n{'network':<12} {'train s/step':>13} {'test s/step':>12}")
    for model, (train, test) in steps.items():
        print(f"{model:<12} {train:13.4f} {test:12.4f}")

    print(f"\nprojected at the paper budget ({epochs} epochs, batch {cfg.data.batch_size}):")
    print(f"{'sweep':<44} {'runs':>5} {'serial h':>9} {f'x{best} jobs h':>11} {'goal h':>7}")
    for name, runs, goal in (
        (f"{'+'.join(PAPER_EXPERIMENTS)} x{args.seeds} seeds", paper, 1.0),
        (f"{RATIO_SWEEP} (its seeds)", ratio, 2.0),
    ):
        hours = sum(run_seconds(s, epochs, steps) + per_job for s in runs) / 3600
        print(f"{name:<44} {len(runs):5d} {hours:9.2f} {hours / speedup:11.2f} {goal:7.1f}")
        print(f"  projected / goal: {hours / speedup / goal:.1f}")
    counts = Counter(s.model for s in paper)
    print("paper runs per network: " + ", ".join(f"{m} {n}" for m, n in sorted(counts.items())))


if __name__ == "__main__":
    main()
