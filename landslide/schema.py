"""The checked schema of ``train.py``'s config, and the name of an overridden domain mix.

A bad value used to surface late, as a traceback after the world was generated and an MLflow
run created, or not at all (``seed=1.5`` trained as seed 1 but was logged as 1.5).
:func:`validate_train_config` types every user-facing knob with a pydantic model (strict:
no float for an integer, no bool for a number) and checks what the knobs must satisfy
together, before any work; every violation is reported at once, one line each, as
``key=value: what is wrong; the fix``, with the key the user would type.

:func:`name_mix_after_counts` keeps a run's name honest: a mix whose counts were overridden
is renamed after them (``ib4``, ``ib100j600``), so the run name
``<model>-<domain_mix.name>-seed<seed>`` says what it trained on.
"""

import re
from collections.abc import Mapping, Sequence
from math import ceil
from pathlib import Path
from typing import Annotated, Any, Literal, TypeGuard, cast, get_args, get_origin

import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import Container, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo

from landslide.bands import BANDS
from landslide.data.patch_source import PatchConfigError, PatchSource
from landslide.data.prepared_samples import fill_sample_settings
from landslide.data.sampling import (
    blocked_test_mask,
    domain_pool_size,
    mix_problems,
    train_part_size,
    validation_size,
)
from landslide.errors import ConfigError
from landslide.layout import KNOWN, UNKNOWN, DomainFiles
from landslide.metrics import METRICS

#: Lightning's seed range (``seed_everything`` refuses others).
MAX_SEED = 2**32 - 1

#: An MLflow run id: 32 lowercase hex characters.
RUN_ID = re.compile(r"[0-9a-f]{32}")

#: What a ``trainer.limit_*_batches`` may be: all batches, a number of them, or a share.
BATCH_LIMIT = "null (all batches), an integer >= 1 (batches) or a fraction in (0, 1]"


def knob(rule: str, example: Any, **constraints: Any) -> Any:
    """A config value: ``rule`` completes "must be ...", ``example`` is a value that works."""
    return Field(examples=[example], json_schema_extra={"rule": rule}, **constraints)


def _batch_limit(value: Any) -> Any:
    whole = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    if value is None or whole or (isinstance(value, float) and 0.0 < value <= 1.0):
        return value
    raise ValueError(BATCH_LIMIT)


def _resume(value: Any) -> Any:
    if isinstance(value, bool) or (isinstance(value, str) and RUN_ID.fullmatch(value)):
        return value
    raise ValueError("neither a bool nor a run id")


BatchLimit = Annotated[Any, AfterValidator(_batch_limit)]


class Schema(BaseModel):
    """Strict types; keys the schema does not name are left to their consumers."""

    model_config = ConfigDict(strict=True, extra="ignore")


class WorldSchema(Schema):
    """``data.world``: the simulated world's grid size and seed."""

    size: int = knob("an integer >= 1 (pixels per side)", 1024, ge=1)
    seed: int = knob("an integer >= 0", 0, ge=0)


class DomainSchema(Schema):
    """``data.domains.<name>``: a domain's role, short name, own pool size and patch folder."""

    role: Literal["known", "unknown"] = knob(f"{KNOWN} or {UNKNOWN}", KNOWN)
    short: str | None = knob(
        "letters and digits, the domain's short name in mix names",
        "ib",
        default=None,
        pattern=r"^[A-Za-z0-9]+$",
    )
    pool_size: int | None = knob(
        "null (data.pool_size) or an integer >= 1 (samples in this domain's pool)",
        120,
        default=None,
        ge=1,
    )
    patches: dict[str, Any] | None = knob(
        "a patches block (a benchmark's patch folder, see landslide/data/patch_source.py)",
        "{images: {folder: ..., glob: '*.png'}, masks: {folder: ...}, bands: {...}, ...}",
        default=None,
    )


class DataSchema(Schema):
    """``data``: the domains, the training mix, the pools and the loaders."""

    domains: dict[str, DomainSchema] = knob("a mapping of domain configs", "{}")
    mix: dict[str, Annotated[int, Field(ge=0)]] = knob(
        "an integer >= 0 (training samples from the domain)", 350
    )
    world: WorldSchema | None = knob("null (prepared data) or {size, seed}", "null")
    patch_size: int = knob("an integer >= 1 (pixels)", 88, ge=1)
    pool_size: int = knob("an integer >= 1", 1000, ge=1)
    unknown_pool_size: int = knob("an integer >= 1", 300, ge=1)
    test_fraction: float = knob("a number strictly between 0 and 1", 0.3, gt=0, lt=1)
    val_fraction: float = knob(
        "a number strictly between 0 and 1, as the lowest-validation-loss checkpoint is kept",
        0.1,
        gt=0,
        lt=1,
    )
    min_landslide_fraction: float = knob("a number in (0, 1]", 0.005, gt=0, le=1)
    max_ignored_fraction: float = knob(
        "a number in [0, 1) (share of ignored pixels a patch may hold)",
        0.99,
        default=0.0,
        ge=0,
        lt=1,
    )
    batch_size: int = knob("an integer >= 1", 5, ge=1)
    num_workers: int = knob("an integer >= 0", 0, ge=0)
    seed: int = knob("an integer >= 0", 0, ge=0)
    # Literal of a tuple is Literal of its items at runtime; mypy wants them spelled out.
    bands: list[Literal[BANDS]] = knob(  # type: ignore[valid-type]
        f"a non-empty list of bands from {', '.join(BANDS)}",
        "[post_red,post_green,post_blue]",
        min_length=1,
    )
    split: Literal["random", "blocked"] = knob("random or blocked", "random")
    block_size: int = knob("an integer >= 1 (pixels)", 352, ge=1)


class TrainerSchema(Schema):
    """``trainer``: the Lightning Trainer settings a user sets."""

    accelerator: str = knob("a string such as cpu, gpu or auto", "auto", default="auto")
    max_epochs: int = knob("an integer >= 1", 5, ge=1)
    limit_train_batches: BatchLimit = knob(BATCH_LIMIT, 1.0, default=None)
    limit_val_batches: BatchLimit = knob(
        BATCH_LIMIT + ", as the lowest-validation-loss checkpoint is kept", 1.0, default=None
    )
    limit_test_batches: BatchLimit = knob(BATCH_LIMIT, 1.0, default=None)
    check_val_every_n_epoch: int | None = knob("null or an integer >= 1", 1, default=1, ge=1)
    precision: str | int = knob(
        "a Lightning precision such as 32-true, bf16-mixed or 16-mixed",
        "bf16-mixed",
        default="32-true",
    )
    devices: int | str | list[int] = knob(
        "an integer >= 1, a list of device indices or auto", 2, default=1
    )
    num_nodes: int = knob("an integer >= 1", 1, default=1, ge=1)


class TaskSchema(Schema):
    """``task``: the learning rate, threshold and figure samples of the LightningModule."""

    lr: float = knob("a number > 0", 0.0001, gt=0)
    threshold: float = knob("a number strictly between 0 and 1", 0.5, gt=0, lt=1)
    figure_samples: int = knob("an integer >= 0", 4, default=4, ge=0)
    channels_last: bool = knob("true or false", "true", default=False)


class TrainSchema(Schema):
    """The user-facing knobs of ``conf/train.yaml`` and its groups."""

    seed: int = knob(f"an integer from 0 to {MAX_SEED}", 1, ge=0, le=MAX_SEED)
    resume: Annotated[Any, AfterValidator(_resume)] = knob(
        "true, false or an MLflow run id (32 hex characters; quote one made only of digits)",
        "true",
        default=False,
    )
    force: bool = knob("true or false", "true", default=False)
    compile: bool = knob("true or false", "true", default=False)
    dry_run: bool = knob("true or false", "true", default=False)
    optimized_metric: str = knob(
        "val/loss or test/<domain>/<metric or loss>", "val/loss", default="val/loss"
    )
    data: DataSchema
    trainer: TrainerSchema
    task: TaskSchema


def validate_train_config(cfg: DictConfig) -> None:
    """Check ``train.py``'s composed config before any data is read or run created.

    Null ``data`` sample settings (``conf/data/prepared.yaml``'s) are first filled in, in
    place, with those the prepared domains were sampled with
    (:func:`~landslide.data.prepared_samples.fill_sample_settings`).

    Raises:
        ConfigError: naming every violation, one line each: ``key=value: what is wrong; the
            fix``.
    """
    fill_sample_settings(cfg)
    unresolved: dict[tuple[str, ...], tuple[str, str]] = {}
    values = _gather(cfg, TrainSchema, (), unresolved)
    problems = [
        f"{key}={_show(_raw(cfg, key))}: cannot be resolved ({why}); fix it or what it refers to"
        for key, why in unresolved.values()
    ]
    failed = {loc[0] for loc in unresolved}
    try:
        TrainSchema.model_validate(values)
    except ValidationError as err:
        for error in err.errors():
            failed.add(str(error["loc"][0]))
            if tuple(error["loc"]) in unresolved:
                continue  # reported as unresolved, not as missing
            line = _field_problem(cfg, error)
            if line is not None:
                problems.append(line)
    data = _section(DataSchema, values, "data", failed)
    trainer = _section(TrainerSchema, values, "trainer", failed)
    if data is not None:
        mix_problems = _mix_problems(cfg, data)
        problems += mix_problems + _patch_problems(cfg, data) + _patch_domain_problems(data)
        if trainer is not None and not mix_problems:
            problems += _batch_problems(data, trainer)
    if trainer is not None:
        problems += _trainer_problems(trainer)
    if data is not None and "optimized_metric" not in failed:
        problems += _optimized_metric_problems(cfg, data)
    if problems:
        lines = [" ".join(p.splitlines()) for p in dict.fromkeys(problems)]  # one line each
        raise ConfigError("\n".join(lines))


def _section[M: BaseModel](
    model: type[M], values: Mapping[str, Any], name: str, failed: set[str]
) -> M | None:
    """``values[name]`` as ``model``, or None where it is absent or failed the check."""
    if name not in values or name in failed:
        return None
    return model.model_validate(values[name])


def name_mix_after_counts(cfg: DictConfig) -> None:
    """Rename ``domain_mix.name`` after its counts when they are not the chosen mix's.

    The name of ``conf/domain_mix/<choice>.yaml`` stands while the counts are that file's
    own (``ratio.yaml``'s interpolated counts included: its name follows them) or a name was
    set along with the counts; otherwise the mix is named as in the paper, ``<short><count>``
    per domain with a positive count (``ib4``, ``ib100j600``; a domain's ``short`` defaults
    to its name). A mix given as ``data.mix={...}`` is moved to ``domain_mix.counts`` first,
    so the logged counts are the trained ones. Call it after :func:`validate_train_config`.
    """
    overridden = _reference(cfg, "data.mix") != "domain_mix.counts"
    if overridden:
        cfg.domain_mix.counts = OmegaConf.to_container(cfg.data.mix, resolve=True)
        cfg.data.mix = "${domain_mix.counts}"
    chosen = _chosen_mix(cfg)
    named = False
    if chosen is not None:
        mix = _plain(cfg.domain_mix)
        overridden |= mix.get("counts") != chosen.get("counts")
        named = mix.get("name") != chosen.get("name")
    if overridden and not named:
        cfg.domain_mix.name = mix_name(cfg.domain_mix.counts, cfg.data.domains)


def mix_name(counts: Mapping[str, int], domains: Mapping[str, Mapping[str, Any]]) -> str:
    """The paper's name of a mix: ``<short><count>`` per domain with a positive count."""
    parts = [
        f"{(domains.get(name) or {}).get('short') or name}{count}"
        for name, count in counts.items()
        if count
    ]
    return "".join(parts) or "empty"


def _chosen_mix(cfg: DictConfig) -> dict[str, Any] | None:
    """The unresolved contents of the chosen ``domain_mix/<choice>.yaml``, if it is found."""
    if not HydraConfig.initialized():
        return None
    hydra = HydraConfig.get()
    choice = hydra.runtime.choices.get("domain_mix")
    if not choice:
        return None
    for source in hydra.runtime.config_sources:
        path = Path(source.path) / "domain_mix" / f"{choice}.yaml"
        if source.schema == "file" and path.is_file():
            node = OmegaConf.load(path)
            return _plain(node) if isinstance(node, DictConfig) else None
    return None


def _plain(node: DictConfig) -> dict[str, Any]:
    """``node`` as plain dicts and lists, interpolations unresolved."""
    # to_container is typed for any node; a DictConfig gives a dict (config keys are strings).
    return cast(dict[str, Any], OmegaConf.to_container(node, resolve=False))


# --- reading the config --------------------------------------------------------------------


def _is_model(annotation: Any) -> TypeGuard[type[BaseModel]]:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _inner(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The schema model a field holds, and whether a mapping key comes before its fields."""
    if _is_model(annotation):
        return annotation, False
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is dict:
        return (args[1], True) if _is_model(args[1]) else (None, False)
    models = [a for a in args if _is_model(a)]
    return (models[0], False) if len(models) == 1 else (None, False)


def _gather(
    node: DictConfig,
    model: type[BaseModel],
    loc: tuple[str, ...],
    unresolved: dict[tuple[str, ...], tuple[str, str]],
) -> dict[str, Any]:
    """The resolved values of the keys ``model`` names.

    Only those: the rest of the config is its consumers' business. A value that cannot be
    resolved goes to ``unresolved`` as the key that failed and why.
    """
    values: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if name not in node:
            continue
        try:
            value = node[name]
            inner, keyed = _inner(info.annotation)
            if isinstance(value, DictConfig) and inner is not None and not keyed:
                value = _gather(value, inner, (*loc, name), unresolved)
            elif isinstance(value, Container):
                value = OmegaConf.to_container(value, resolve=True)
        except OmegaConfBaseException as err:
            key = getattr(err, "full_key", None) or ".".join((*loc, name))
            unresolved[(*loc, name)] = (key, str(err).splitlines()[0])
            continue
        values[name] = value
    return values


def _raw(cfg: DictConfig, key: str) -> Any:
    """The value at ``key`` as written (``${...}`` unresolved); None where there is none."""
    parent_key, _, leaf = key.rpartition(".")
    try:
        parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
        tree = OmegaConf.to_container(parent, resolve=False)  # ValueError if not a node
    except (OmegaConfBaseException, ValueError):
        return None
    return tree.get(leaf) if isinstance(tree, dict) else None


def _reference(cfg: DictConfig, key: str) -> str | None:
    """The absolute key ``key``'s value refers to when it is exactly ``${other.key}``."""
    parent_key = key.rpartition(".")[0]
    raw = _raw(cfg, key)
    match = re.fullmatch(r"\$\{(\.*)([\w.]+)\}", raw) if isinstance(raw, str) else None
    if match is None:
        return None
    dots, target = match.groups()
    if not dots:
        return target
    base = parent_key.split(".") if parent_key else []
    base = base[: len(base) - (len(dots) - 1)]
    return ".".join([*base, target])


def _user_key(cfg: DictConfig, loc: Sequence[Any]) -> str:
    """The key a user would set for a config location, following plain references.

    ``data.mix.iburi`` is ``domain_mix.counts.iburi``, ``data.bands`` is ``bands.names``.
    """
    parts = [str(p) for p in loc]
    for _ in range(10):
        for i in range(1, len(parts) + 1):
            target = _reference(cfg, ".".join(parts[:i]))
            if target is not None:
                parts = [*target.split("."), *parts[i:]]
                break
        else:
            break
    return ".".join(parts)


def _show(value: Any) -> str:
    """A value as it would be written on the command line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_show(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) and not value.isprintable() else str(value)


def _knob(loc: Sequence[Any]) -> tuple[FieldInfo | None, int]:
    """The schema field of a config location, and how many parts of ``loc`` name it."""
    model: type[BaseModel] | None = TrainSchema
    info, depth, skip = None, 0, False
    for i, part in enumerate(loc):
        if skip:
            skip = False
            continue
        if model is None or part not in model.model_fields:
            break
        info, depth = model.model_fields[part], i + 1
        model, skip = _inner(info.annotation)
    return info, depth


def _field_problem(cfg: DictConfig, error: Mapping[str, Any]) -> str | None:
    loc = [p for p in error["loc"] if not str(p).startswith(("function-", "constrained-"))]
    info, depth = _knob(loc)
    if info is None:
        return None
    if error["type"] == "missing":
        key = _user_key(cfg, loc)
        example = _example(info, key)
        return f"{key}: is missing; set it, e.g. +{key}={example}"
    # A bad list item is reported as the whole list; a bad mapping value by its own key.
    shown = loc[:depth] if any(isinstance(p, int) for p in loc) else loc
    key = _user_key(cfg, shown)
    value = error["input"] if shown == loc else OmegaConf.select(cfg, ".".join(map(str, shown)))
    if isinstance(value, Container):
        value = OmegaConf.to_container(value, resolve=True)
    extra = info.json_schema_extra  # knob() sets a dict
    rule = extra.get("rule", "valid") if isinstance(extra, dict) else "valid"
    return f"{key}={_show(value)}: must be {rule}; use e.g. {key}={_example(info, key)}"


def _example(info: FieldInfo, key: str) -> str:
    return _show(info.examples[0]) if info.examples else "..."


# --- rules across knobs ----------------------------------------------------------------------


def _mix_problems(cfg: DictConfig, data: DataSchema) -> list[str]:
    """What the DataModule would refuse, and a mix too small to train or validate on."""
    problems = []
    base = _user_key(cfg, ["data", "mix"])
    roles = {name: domain.role for name, domain in data.domains.items()}
    own = {n: d.pool_size for n, d in data.domains.items() if d.pool_size is not None}
    reasons = mix_problems(data.mix, roles, data.pool_size, data.test_fraction, own)
    for name, reason in reasons.items():
        problems.append(f"{_user_key(cfg, ['data', 'mix', name])}={data.mix[name]}: {reason}")
    if problems:
        return problems
    known = [name for name, role in roles.items() if role == KNOWN]
    train_pool = train_part_size(data.pool_size, data.test_fraction)
    mix = f"{base}={_show(data.mix)}"
    n_val = sum(validation_size(c, data.val_fraction) for c in data.mix.values())
    n_train = sum(data.mix.values()) - n_val
    first = next(iter(data.mix), known[0] if known else "<domain>")
    if sum(data.mix.values()) == 0:
        return [
            f"{mix}: domain_mix selects no training samples; give at least one count, "
            f"e.g. {base}.{first}=350"
        ]
    if n_val == 0:
        least = next(
            n for n in range(1, train_pool + 2) if validation_size(n, data.val_fraction) > 0
        )
        return [
            f"{mix}: leaves the validation split empty (data.val_fraction="
            f"{data.val_fraction} of each count, rounded), and the lowest-validation-loss "
            f"checkpoint needs one; give a domain at least {least} samples or raise "
            "data.val_fraction"
        ]
    if n_train == 0:
        return [
            f"{mix}: leaves the training split empty (data.val_fraction={data.val_fraction} "
            "of each count is held out for validation); raise the counts or lower "
            "data.val_fraction"
        ]
    return []


def _patch_problems(cfg: DictConfig, data: DataSchema) -> list[str]:
    """A patch or block that does not fit the domains' grids."""
    if data.world is not None:
        where = f"the default world's domains (data.world.size={data.world.size} px)"
        sizes = {where: (data.world.size, data.world.size)}
        fix = "a smaller data.patch_size or a larger data.world.size"
    else:
        sizes = _raster_sizes(cfg, data)
        fix = "a smaller data.patch_size"
    problems = []
    for where, (height, width) in sizes.items():
        if data.patch_size > min(height, width):
            problems.append(
                f"data.patch_size={data.patch_size}: larger than {where}; use {fix}, "
                f"e.g. data.patch_size={min(88, height, width)}"
            )
    if data.split != "blocked":
        return problems
    if data.block_size < data.patch_size:
        problems.append(
            f"data.block_size={data.block_size}: smaller than data.patch_size="
            f"{data.patch_size}, so no patch fits in a block of the blocked split; use "
            f"data.block_size={max(data.patch_size, 352)} or a smaller patch"
        )
    for where, shape in sizes.items():
        try:
            blocked_test_mask(shape, data.block_size, data.test_fraction, np.random.default_rng())
        except ValueError as err:
            problems.append(f"data.block_size={data.block_size}: in {where}, {err}")
    return problems


def _patch_domain_problems(data: DataSchema) -> list[str]:
    """A bad ``patches:`` block, or a band the band set needs that a patch domain lacks."""
    problems = []
    for name, domain in data.domains.items():
        if domain.patches is None:
            continue
        try:
            PatchSource.from_config(name, domain.patches).check_bands(data.bands)
        except PatchConfigError as err:
            problems.append(str(err))
    return problems


def _raster_sizes(cfg: DictConfig, data: DataSchema) -> dict[str, tuple[int, int]]:
    """Grid sizes of the prepared domains whose mask can be read (headers only).

    The DataModule reports missing or unreadable files itself.
    """
    import rasterio

    root = OmegaConf.select(cfg, "data.root", default=None, throw_on_resolution_failure=False)
    sizes: dict[str, tuple[int, int]] = {}
    if root is None:
        return sizes
    for name, domain in data.domains.items():
        if domain.patches is not None:
            continue  # a folder of patch files has no grid; each file is cropped or padded
        mask = DomainFiles(Path(str(root)) / name).mask
        try:
            with rasterio.open(mask) as src:
                sizes[f"domain '{name}' ({src.height} x {src.width} px, {mask})"] = (
                    src.height,
                    src.width,
                )
        except (OSError, rasterio.errors.RasterioError):
            continue
    return sizes


def recorded_metrics(domains: Sequence[str]) -> list[str]:
    """The metric names a training run returns.

    ``val/loss`` (the kept checkpoint's) and ``test/<domain>/<metric or loss>``.
    """
    return ["val/loss"] + [f"test/{d}/{m}" for d in domains for m in (*METRICS, "loss")]


def _optimized_metric_problems(cfg: DictConfig, data: DataSchema) -> list[str]:
    """An ``optimized_metric`` no run records (a sweeper would optimise NaN)."""
    metric = OmegaConf.select(cfg, "optimized_metric", default="val/loss")
    if metric in recorded_metrics(list(data.domains)):
        return []
    first = next(iter(data.domains), "<domain>")
    return [
        f"optimized_metric={metric}: not a metric a run records; use val/loss (the lowest "
        f"validation loss) or test/<domain>/<metric or loss>, e.g. test/{first}/f1 "
        f"(metrics: {', '.join(METRICS)})"
    ]


def _batch_problems(data: DataSchema, trainer: TrainerSchema) -> list[str]:
    """A fractional batch limit that Lightning would round down to no batch at all."""
    n_val = sum(validation_size(c, data.val_fraction) for c in data.mix.values())
    pools = [
        (d.role, domain_pool_size(d.model_dump(), data.pool_size, data.unknown_pool_size))
        for d in data.domains.values()
    ]
    test_sizes = [
        size - train_part_size(size, data.test_fraction) if role == KNOWN else size
        for role, size in pools
    ]
    stages = {
        "train": (trainer.limit_train_batches, [sum(data.mix.values()) - n_val]),
        "val": (trainer.limit_val_batches, [n_val]),
        "test": (trainer.limit_test_batches, [s for s in test_sizes if s]),
    }
    problems = []
    for stage, (limit, sizes) in stages.items():
        if not isinstance(limit, float) or not sizes:
            continue
        batches = min(ceil(s / data.batch_size) for s in sizes)
        if int(batches * limit) == 0:
            problems.append(
                f"trainer.limit_{stage}_batches={limit}: is less than one of the {batches} "
                f"{stage} batches (data.batch_size={data.batch_size}); use at least "
                f"{ceil(1e4 / batches) / 1e4} or a number of batches, e.g. "
                f"trainer.limit_{stage}_batches=1"
            )
    return problems


def _trainer_problems(trainer: TrainerSchema) -> list[str]:
    """Validation that would never run, and a GPU that is not there."""
    problems = []
    every = trainer.check_val_every_n_epoch
    if every is not None and every > trainer.max_epochs:
        problems.append(
            f"trainer.check_val_every_n_epoch={every}: validation would never run in "
            f"trainer.max_epochs={trainer.max_epochs} epochs, and the lowest-validation-loss "
            f"checkpoint needs it; use trainer.check_val_every_n_epoch={trainer.max_epochs} "
            "or less"
        )
    devices = trainer.devices
    several = len(devices) > 1 if isinstance(devices, list) else devices not in (1, "1", "auto")
    if several or trainer.num_nodes > 1:
        launcher = HydraConfig.get().launcher if HydraConfig.initialized() else {}
        if "joblib" in str(launcher.get("_target_", "")):
            problems.append(
                f"trainer.devices={trainer.devices}: hydra/launcher=joblib runs each job in a "
                "worker process from which Lightning cannot start the other training "
                "processes; run multi-device jobs with the default launcher (one after "
                "another) or hydra/launcher=slurm, or use trainer.devices=1 with joblib"
            )
    if trainer.accelerator.lower() in ("gpu", "cuda"):
        import torch

        if not torch.cuda.is_available():
            problems.append(
                f"trainer.accelerator={trainer.accelerator}: trainer=gpu needs a CUDA GPU and "
                "none is visible here; use trainer=paper (accelerator auto) or trainer=cpu"
            )
    return problems
