"""The bad-input table: every input a user can get wrong, as ``train.py`` meets it.

Each case runs ``python train.py <overrides>`` (in this process, through ``@hydra.main`` and
``runpy``, so the exit status and stderr are the real ones) and asserts a non-zero exit,
exactly one line naming the input and the fix, and that nothing partial was left: no RUNNING
or FINISHED run, no checkpoint and no half-written file. README.md ("When something goes
wrong") lists the same cases with their messages.
"""

import functools
import logging
import re
import runpy
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pytest
import torch
from conftest import write_domain
from hydra.core.global_hydra import GlobalHydra

from landslide.errors import UserError
from landslide.mlflow_store import open_store

ROOT = Path(__file__).resolve().parents[1]
PREPARED = ["data=prepared", "+data.domains.alpha={role:known}", "data.mix={alpha:100}"]


def store(folder: Path) -> str:
    (folder / "mlruns").mkdir(exist_ok=True)
    return f"sqlite:///{folder}/mlruns/mlflow.db"


@functools.cache
def _template_store() -> bytes:
    """A store holding the experiment ``landslide``, made once (migrations take seconds)."""
    with tempfile.TemporaryDirectory() as tmp:
        open_store(f"sqlite:///{tmp}/mlflow.db").create_experiment("landslide")
        return (Path(tmp) / "mlflow.db").read_bytes()


def existing_store(folder: Path) -> str:
    uri = store(folder)
    (folder / "mlruns" / "mlflow.db").write_bytes(_template_store())
    return uri


def prepared_alpha(folder: Path) -> Path:
    files = write_domain(folder / "data" / "prepared", "alpha", size=160)
    return files.stack


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@dataclass(frozen=True)
class Case:
    """One bad input.

    Attributes:
        overrides: the command line after ``train.py``.
        message: regex the whole one-line message must match (after ``train.py: ``).
        setup: prepares the folder the command runs in; returns the MLflow tracking URI to
            use (None: the default store under ``mlruns/``).
    """

    overrides: list[str]
    message: str
    setup: Callable[[Path], str | None] = field(default=lambda folder: None)


def damaged_stack(folder: Path) -> str:
    truncate(prepared_alpha(folder))
    return None


def not_a_geotiff(folder: Path) -> str:
    prepared_alpha(folder).write_text("not a raster")
    return None


def unknown_run(folder: Path) -> str:
    return existing_store(folder)


def read_only_store(folder: Path) -> str:
    return existing_store(folder) + "?mode=ro&uri=true"


def missing_store_folder(folder: Path) -> str:
    return f"sqlite:///{folder}/nowhere/mlflow.db"


def corrupt_store(folder: Path) -> str:
    (folder / "mlruns").mkdir()
    (folder / "mlruns" / "mlflow.db").write_bytes(b"not a database" * 100)
    return store(folder)


CASES: dict[str, Case] = {
    # --- config values: refused before any data is read or run created ---
    "seed not an integer": Case(
        ["seed=1.5"], r"seed=1\.5: must be an integer from 0 to 4294967295; use e\.g\. seed=1"
    ),
    "batch size 0": Case(["data.batch_size=0"], r"data\.batch_size=0: must be an integer >= 1.*"),
    "negative workers": Case(
        ["data.num_workers=-1"], r"data\.num_workers=-1: must be an integer >= 0.*"
    ),
    "patch larger than the world": Case(
        ["data.patch_size=2000"], r"data\.patch_size=2000: larger than .*"
    ),
    "unknown optimised metric": Case(
        ["optimized_metric=test/palu/f2"],
        r"optimized_metric=test/palu/f2: not a metric a run records; use val/loss .*"
        r"e\.g\. test/iburi/f1 .*",
    ),
    "no validation batches": Case(
        ["+trainer.limit_val_batches=0"], r"trainer\.limit_val_batches=0: .*validation.*"
    ),
    "validation split empty": Case(
        ["domain_mix.counts.iburi=4", "domain_mix.counts.jiuzhaigou=0"],
        r"domain_mix\.counts=\{iburi: 4, jiuzhaigou: 0\}: leaves the validation split empty.*",
    ),
    "negative count": Case(
        ["domain_mix.counts.iburi=-5"], r"domain_mix\.counts\.iburi=-5: must be an integer >= 0.*"
    ),
    "no training samples": Case(
        ["domain_mix.counts.iburi=0", "domain_mix.counts.jiuzhaigou=0"],
        r".*selects no training samples.*",
    ),
    "unknown domain in the mix": Case(
        ["+domain_mix.counts.atlantis=10"], r".*domain_mix names domain 'atlantis'.*"
    ),
    "test-only domain in the mix": Case(
        ["+domain_mix.counts.palu=10"], r".*'palu', an unknown \(test-only\) domain.*"
    ),
    "more samples than the pool": Case(
        ["domain_mix.counts.iburi=800"], r".*asks for 800 'iburi' samples but its training pool.*"
    ),
    "learning rate 0": Case(["task.lr=0"], r"task\.lr=0: must be a number > 0.*"),
    "threshold outside (0, 1)": Case(
        ["task.threshold=1"], r"task\.threshold=1: must be a number strictly between 0 and 1.*"
    ),
    "zero epochs": Case(["trainer.max_epochs=0"], r"trainer\.max_epochs=0: must be an integer.*"),
    "force not a boolean": Case(["force=1"], r"force=1: must be true or false.*"),
    "resume not a run id": Case(["resume=latest"], r"resume=latest: must be .*"),
    # --- the tracking store: one line within seconds ---
    "tracking server unreachable": Case(
        [],
        r"MLflow tracking server http://127\.0\.0\.1:9 is unreachable \(ConnectionError\); "
        r"start it .*",
        lambda folder: "http://127.0.0.1:9",
    ),
    "store folder missing": Case(
        [], r"MLflow store folder .*/nowhere does not exist; create it .*", missing_store_folder
    ),
    "store read-only": Case([], r"MLflow store .*mlflow\.db is read-only; .*", read_only_store),
    "store not a database": Case(
        [],
        r"MLflow store .*mlflow\.db cannot be opened \(.*file is not a database\); repair .*",
        corrupt_store,
    ),
    # --- resume ---
    "resume an unknown run": Case(
        ["resume=0123456789abcdef0123456789abcdef"],
        r"resume=0123456789abcdef0123456789abcdef: no such run in .*; use resume=true .*",
        unknown_run,
    ),
    # --- data ---
    "damaged prepared stack": Case(
        PREPARED,
        r".*alpha/stack\.tif is damaged or truncated \(GDAL: .*\); .*prepare\.py.*",
        damaged_stack,
    ),
    "prepared stack not a GeoTIFF": Case(
        PREPARED, r".*alpha/stack\.tif.*prepare\.py.*", not_a_geotiff
    ),
    "prepared domain missing": Case(
        ["data=prepared", "+data.domains.beta={role:known}", "data.mix={beta:100}"],
        r"domain 'beta': missing .*stack\.tif.*; prepare it .*",
    ),
}
if not torch.cuda.is_available():
    CASES["gpu trainer without a GPU"] = Case(
        ["trainer=gpu"],
        r"trainer\.accelerator=gpu: trainer=gpu needs a CUDA GPU and none is visible here; "
        r"use trainer=paper \(accelerator auto\) or trainer=cpu",
    )


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Hydra configures the root logger for its job; leave it as the other tests expect."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def run_train(argv: list[str]) -> tuple[int, str | None]:
    """``python train.py <argv>`` in this process: its exit status and exit message."""
    sys.argv = ["train.py", *argv]
    GlobalHydra.instance().clear()
    try:
        runpy.run_path(str(ROOT / "train.py"), run_name="__main__")
    except SystemExit as exited:
        if isinstance(exited.code, str):
            return 1, exited.code  # Python prints it to stderr and exits with 1
        return exited.code or 0, None
    finally:
        GlobalHydra.instance().clear()
    return 0, None


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_a_failure_and_leaves_nothing(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    case = CASES[name]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    uri = case.setup(tmp_path)
    if uri is None:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    before = {p for p in tmp_path.rglob("*")}

    small = [] if "data=prepared" in case.overrides else ["data.world.size=256"]
    code, message = run_train([*small, *case.overrides])

    assert code != 0
    assert message is not None, capsys.readouterr().err[-2000:]
    assert "\n" not in message, message
    assert re.fullmatch(r"train\.py: " + case.message, message), message
    # Nothing partial: no run left RUNNING or FINISHED, no checkpoint, no temporary file.
    database = tmp_path / "mlruns" / "mlflow.db"
    if database.exists() and database.read_bytes()[:6] == b"SQLite":
        client = mlflow.MlflowClient(f"sqlite:///{database}")
        experiment = client.get_experiment_by_name("landslide")
        if experiment is not None:
            assert client.search_runs([experiment.experiment_id]) == []
    new = {p for p in tmp_path.rglob("*")} - before
    assert not [p for p in new if p.suffix in (".ckpt", ".tmp") or ".tmp" in p.name]
    assert not (tmp_path / "data" / "default_world").exists()


def test_an_empty_tracking_uri_is_refused_not_a_store_in_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="^the MLflow tracking URI is empty"):
        open_store(" ")
    assert list(tmp_path.iterdir()) == []  # MLflow's fallback ./mlflow.db was not made
