"""train.py's config check: every bad value one line, before any work; honest mix names."""

import re
from pathlib import Path

import pytest
import torch
from conftest import write_domain

from landslide.config import compose_config
from landslide.errors import ConfigError
from landslide.schema import mix_name, name_mix_after_counts, validate_train_config

ROOT = Path(__file__).resolve().parents[1]


def check(tmp_path: Path, overrides: list[str]) -> None:
    validate_train_config(compose_config(overrides, root_dir=tmp_path))


def problems(tmp_path: Path, overrides: list[str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        check(tmp_path, overrides)
    return str(caught.value).splitlines()


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["trainer=quick", "data.world.size=512", "data.patch_size=32"],  # tests/test_train.py
        ["trainer=paper", "domain_mix=ib700", "seed=3", "resume=true", "force=true"],
        ["domain_mix=ratio", "domain_mix.iburi=0"],
        ["resume=0123456789abcdef0123456789abcdef"],
        ["bands=post_rgb", "data.split=blocked"],
        ["+trainer.limit_val_batches=0.5", "+trainer.check_val_every_n_epoch=5"],
        ["task.lr=1", "data.num_workers=0"],  # an integer learning rate is a number
    ],
)
def test_good_configs_pass(tmp_path: Path, overrides: list[str]) -> None:
    check(tmp_path, overrides)


LIMIT = r"must be null \(all batches\), an integer >= 1 \(batches\) or a fraction in \(0, 1\]"


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (["seed=1.5"], r"seed=1\.5: must be an integer from 0 to 4294967295; use e\.g\. seed=1"),
        (["seed=true"], r"seed=true: must be an integer"),  # a bool is not an integer
        (["seed=-1"], r"seed=-1: must be an integer from 0"),
        (["resume=abc"], r"resume=abc: must be true, false or an MLflow run id \(32 hex"),
        (["force=yes"], r"force=yes: must be true or false; use e\.g\. force=true"),
        (
            ["domain_mix.counts.iburi=1.5"],
            r"domain_mix\.counts\.iburi=1\.5: must be an integer >= 0",
        ),
        (["domain_mix.counts.iburi=-3"], r"domain_mix\.counts\.iburi=-3: must be an integer >= 0"),
        (
            ["domain_mix=ratio", "domain_mix.iburi=-50"],
            r"domain_mix\.iburi=-50: must be an integer >= 0 .*; use e\.g\. domain_mix\.iburi=",
        ),
        (
            ["domain_mix.counts.iburi=0", "domain_mix.counts.jiuzhaigou=0"],
            r"domain_mix\.counts=\{iburi: 0, jiuzhaigou: 0\}: domain_mix selects no training "
            r"samples; give at least one count",
        ),
        (
            ["+domain_mix.counts.atlantis=10"],
            r"domain_mix\.counts\.atlantis=10: domain_mix names domain 'atlantis', which the "
            r"data config does not define",
        ),
        (
            ["domain_mix.counts.iburi=800"],
            r"domain_mix\.counts\.iburi=800: domain_mix asks for 800 'iburi' samples but its "
            r"training pool holds 700",
        ),
        (
            ["+domain_mix.counts.palu=10"],
            r"domain_mix\.counts\.palu=10: .*'palu', an unknown \(test-only\) domain; train on "
            r"known domains \(iburi, jiuzhaigou\)",
        ),
        (
            ["data.mix={iburi:10,palu:5}"],
            r"data\.mix\.palu=5: .*an unknown \(test-only\) domain",
        ),
        (
            ["domain_mix.counts.iburi=4", "domain_mix.counts.jiuzhaigou=0"],
            r"domain_mix\.counts=\{iburi: 4, jiuzhaigou: 0\}: leaves the validation split empty "
            r".*; give a domain at least 6 samples or raise data\.val_fraction",
        ),
        (
            [
                "domain_mix.counts.iburi=1",
                "domain_mix.counts.jiuzhaigou=0",
                "data.val_fraction=0.9",
            ],
            r"domain_mix\.counts=\{iburi: 1, jiuzhaigou: 0\}: leaves the training split empty",
        ),
        (["data.batch_size=0"], r"data\.batch_size=0: must be an integer >= 1; use e\.g\. "),
        (["data.num_workers=-1"], r"data\.num_workers=-1: must be an integer >= 0"),
        (["data.patch_size=0"], r"data\.patch_size=0: must be an integer >= 1"),
        (["data.patch_size=40.5"], r"data\.patch_size=40\.5: must be an integer >= 1"),
        (
            ["data.patch_size=2000"],
            r"data\.patch_size=2000: larger than the default world's domains "
            r"\(data\.world\.size=1024 px\); use a smaller data\.patch_size",
        ),
        (["data.pool_size=0"], r"data\.pool_size=0: must be an integer >= 1"),
        (["data.unknown_pool_size=0"], r"data\.unknown_pool_size=0: must be an integer >= 1"),
        (["data.world.size=0"], r"data\.world\.size=0: must be an integer >= 1"),
        (
            ["data.val_fraction=0"],
            r"data\.val_fraction=0: must be a number strictly between 0 and 1, as the "
            r"lowest-validation-loss checkpoint is kept; use e\.g\. data\.val_fraction=0\.1",
        ),
        (["data.val_fraction=1.0"], r"data\.val_fraction=1\.0: must be a number strictly"),
        (["data.test_fraction=0.0"], r"data\.test_fraction=0\.0: must be a number strictly"),
        (["data.split=bogus"], r"data\.split=bogus: must be random or blocked"),
        (
            ["data.split=blocked", "data.block_size=64"],
            r"data\.block_size=64: smaller than data\.patch_size=88",
        ),
        (
            ["data.split=blocked", "data.block_size=1024"],
            r"data\.block_size=1024: in the default world's domains .* too few for a 30% test",
        ),
        (
            ["data.bands=[post_red,infrared]"],
            r"data\.bands=\[post_red,infrared\]: must be a non-empty list of bands from slope",
        ),
        (["data.domains.iburi.role=maybe"], r"data\.domains\.iburi\.role=maybe: must be known "),
        (
            ["trainer=quick", "trainer.limit_val_batches=0"],
            rf"trainer\.limit_val_batches=0: {LIMIT}, as the lowest-validation-loss checkpoint",
        ),
        (
            ["trainer=quick", "trainer.limit_val_batches=0.0"],
            rf"trainer\.limit_val_batches=0\.0: {LIMIT}",
        ),
        (["trainer.limit_train_batches=2.0"], rf"trainer\.limit_train_batches=2\.0: {LIMIT}"),
        (["trainer=quick", "trainer.limit_test_batches=0"], r"trainer\.limit_test_batches=0: "),
        (
            ["+trainer.limit_val_batches=0.01"],
            r"trainer\.limit_val_batches=0\.01: is less than one of the 14 val batches "
            r"\(data\.batch_size=5\); use at least 0\.0715",
        ),
        (
            ["+trainer.check_val_every_n_epoch=10"],
            r"trainer\.check_val_every_n_epoch=10: validation would never run in "
            r"trainer\.max_epochs=5 epochs",
        ),
        (["+trainer.check_val_every_n_epoch=0"], r"trainer\.check_val_every_n_epoch=0: must be"),
        (["trainer.max_epochs=0"], r"trainer\.max_epochs=0: must be an integer >= 1"),
        (["trainer.max_epochs=2.5"], r"trainer\.max_epochs=2\.5: must be an integer >= 1"),
        (["task.lr=0"], r"task\.lr=0: must be a number > 0; use e\.g\. task\.lr=0\.0001"),
        (["task.lr=-1e-3"], r"task\.lr=-0\.001: must be a number > 0"),
        (["task.threshold=1"], r"task\.threshold=1: must be a number strictly between 0 and 1"),
        (["task.threshold=0.0"], r"task\.threshold=0\.0: must be a number strictly between"),
        (["~data.batch_size"], r"data\.batch_size: is missing; set it, e\.g\. \+data\.batch_size="),
        (
            ["domain_mix.counts.iburi=${nowhere}"],
            r"domain_mix\.counts\.iburi=\$\{nowhere\}: cannot be resolved \(Interpolation key "
            r"'nowhere' not found\)",
        ),
    ],
)
def test_each_bad_value_is_one_line(tmp_path: Path, overrides: list[str], line: str) -> None:
    (message,) = problems(tmp_path, overrides)
    assert re.fullmatch(line + ".*", message), message


def test_a_gpu_trainer_without_cuda_names_the_alternatives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert problems(tmp_path, ["trainer=gpu"]) == [
        "trainer.accelerator=gpu: trainer=gpu needs a CUDA GPU and none is visible here; use "
        "trainer=paper (accelerator auto) or trainer=cpu"
    ]


def test_every_violation_is_reported_at_once(tmp_path: Path) -> None:
    lines = problems(tmp_path, ["seed=1.5", "data.batch_size=0", "task.lr=0", "force=1"])
    assert [line.split("=")[0] for line in lines] == ["seed", "force", "data.batch_size", "task.lr"]


def test_prepared_domains_are_checked_against_their_rasters(tmp_path: Path) -> None:
    write_domain(tmp_path / "data" / "prepared", "alpha", size=160)
    prepared = ["data=prepared", "+data.domains.alpha={role:known}", "data.mix={alpha:100}"]
    check(tmp_path, prepared)
    (line,) = problems(tmp_path, [*prepared, "data.patch_size=200"])
    assert line.startswith("data.patch_size=200: larger than domain 'alpha' (160 x 160 px, ")


# --- mix names -------------------------------------------------------------------------------


def named(tmp_path: Path, overrides: list[str]) -> tuple[str, str]:
    cfg = compose_config(overrides, root_dir=tmp_path)
    validate_train_config(cfg)
    name_mix_after_counts(cfg)
    return cfg.domain_mix.name, cfg.logger.run_name


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ([], "ib350j350"),
        (["domain_mix=j700"], "j700"),
        (["domain_mix.counts.iburi=350"], "ib350j350"),  # the file's own count
        (["domain_mix.counts.iburi=40", "domain_mix.counts.jiuzhaigou=0"], "ib40"),
        (["domain_mix=ib700", "+domain_mix.counts.jiuzhaigou=100"], "ib700j100"),
        (["domain_mix=ratio", "domain_mix.iburi=250"], "ratio_ib250"),  # names itself
        (["domain_mix=ratio", "domain_mix.counts.iburi=100"], "ib100j350"),
        (["data.mix={jiuzhaigou:60}"], "j60"),
        (["domain_mix.name=mine", "domain_mix.counts.iburi=100"], "mine"),  # a name given
    ],
)
def test_an_overridden_mix_is_named_after_its_counts(
    tmp_path: Path, overrides: list[str], name: str
) -> None:
    assert named(tmp_path, overrides) == (name, f"resu_senet-{name}-seed42")


def test_a_mix_given_as_data_mix_is_logged_as_domain_mix_counts(tmp_path: Path) -> None:
    cfg = compose_config(["data.mix={iburi:40}"], root_dir=tmp_path)
    name_mix_after_counts(cfg)
    assert dict(cfg.domain_mix.counts) == {"iburi": 40}
    assert dict(cfg.data.mix) == {"iburi": 40}


def test_mix_names_use_short_names_or_the_domain_name() -> None:
    domains = {"iburi": {"short": "ib"}, "nepal": {"role": "known"}}
    assert mix_name({"iburi": 100, "nepal": 0}, domains) == "ib100"
    assert mix_name({"nepal": 300, "iburi": 50}, domains) == "nepal300ib50"
