"""Read finished runs from the MLflow store into one table."""

import logging
from collections.abc import Sequence

import mlflow
import pandas as pd

from landslide.lifecycle import is_complete
from landslide.sweeps import PARENT, SWEEP_ID, find_sweep

log = logging.getLogger(__name__)

#: Run columns that identify a training setting; beside them, one ``count/<domain>`` column
#: per domain of any run's mix (:data:`COUNT`) and one column per metric.
KEYS: tuple[str, ...] = (
    "run_id",
    "run_name",
    "experiment",
    "model",
    "mix",
    "seed",
    "ratio_axis",
    "data",
)
#: Prefix of the columns of a run's training counts: ``count/iburi`` is its Iburi samples.
COUNT = "count/"
#: Prefix of the logged params of a run's training counts (``domain_mix.counts.iburi``).
COUNT_PARAM = "domain_mix.counts."


def data_source(params: dict[str, str]) -> str:
    """Say plainly which data a run used: the simulated default world or prepared data."""
    size = params.get("data.world.size")
    if size not in (None, "None"):
        seed = params.get("data.world.seed")
        version = params.get("data.world.generator_version", "?")
        return f"simulated default world v{version} ({size} px per domain, world seed {seed})"
    return f"prepared data ({params.get('data.root', 'unknown root')})"


def training_counts(params: dict[str, str]) -> dict[str, int]:
    """A run's training samples per domain, from its logged ``domain_mix.counts``.

    Raises:
        ValueError: a count is not an integer.
    """
    return {
        key.removeprefix(COUNT_PARAM): int(value)
        for key, value in params.items()
        if key.startswith(COUNT_PARAM)
    }


def ratio_axis(params: dict[str, str], counts: dict[str, int]) -> str | None:
    """The domain whose count a ratio mix varies, or None for a fixed mix.

    A ratio mix (``conf/domain_mix/ratio.yaml``) names the domain it varies by its own count
    knob: ``domain_mix.iburi`` sets ``domain_mix.counts.iburi``, the rest of ``total`` goes to
    the other domain. A fixed mix logs its counts only.
    """
    axes = [domain for domain in counts if f"domain_mix.{domain}" in params]
    return axes[0] if len(axes) == 1 else None


def collect_runs(
    client: mlflow.MlflowClient,
    experiments: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    data: str | None = None,
    sweep: str | int | Sequence[str | int] | None = None,
) -> pd.DataFrame:
    """One row per complete training run: its setting and every metric it logged.

    A run counts once it is complete (:func:`landslide.lifecycle.is_complete`).

    Args:
        client: the MLflow client of the store.
        experiments: experiment names to read; None reads every experiment.
        exclude: experiment names to skip (e.g. the report's own).
        data: keep only runs whose data source (see :func:`data_source`) contains this text;
            required when the runs used more than one source, so numbers from different
            data are never averaged together.
        sweep: keep only the runs of this sweep (or these sweeps): the children of its
            parent run, named by its sweep id, run name or run id
            (:func:`landslide.sweeps.find_sweep`).

    Returns:
        Columns :data:`KEYS`, one ``count/<domain>`` per domain of the runs' mixes (0 where
        a mix leaves the domain out), and one per metric key (``test/palu/f1``,
        ``mmd/palu/mean``, ...); ``ratio_axis`` is the domain a ratio mix varies
        (:func:`ratio_axis`). One row per model, mix and seed (the newest run);
        ``attrs["repeats"]`` counts the older repeats left out; ``attrs["sweeps"]`` names
        the sweeps read (empty when not restricted to sweeps).

    Raises:
        ConfigError: ``sweep`` names no sweep of the experiments read, or several.
    """
    found = client.search_experiments()
    names = {e.experiment_id: e.name for e in found}
    if experiments is not None:
        missing = set(experiments) - set(names.values())
        if missing:
            raise ValueError(
                f"MLflow experiments {sorted(missing)} do not exist in {client.tracking_uri}"
            )
    ids = [
        i
        for i, name in names.items()
        if name not in exclude and (experiments is None or name in experiments)
    ]
    # One id or several; an id Hydra read as a number is still an id.
    names_of_sweeps = [] if sweep is None else [sweep] if isinstance(sweep, str | int) else sweep
    parents = [find_sweep(client, ids, str(name)) for name in names_of_sweeps]
    sweeps = {p.info.run_id: f"{p.data.tags.get(SWEEP_ID)} (run {p.info.run_id})" for p in parents}
    rows = []
    for run in client.search_runs(ids, "attributes.status = 'FINISHED'", max_results=50_000):
        params = run.data.params
        if "model.name" not in params or not is_complete(run):
            continue  # not a training run (e.g. a sweep's parent), or one that failed after fit
        if sweeps and run.data.tags.get(PARENT) not in sweeps:
            continue
        try:
            seed = int(params["seed"])
            counts = training_counts(params)
        except ValueError:
            # Recorded before the config was validated (e.g. seed=1.5, trained as seed 1):
            # its setting is unknown, so it cannot be averaged with anything.
            log.warning(
                "skipping run %s (%s): seed=%s or a domain_mix count is not an integer",
                run.info.run_name,
                run.info.run_id,
                params.get("seed"),
            )
            continue
        rows.append(
            {
                "run_id": run.info.run_id,
                "run_name": run.info.run_name,
                "experiment": names[run.info.experiment_id],
                "model": params["model.name"],
                "mix": params["domain_mix.name"],
                "seed": seed,
                "ratio_axis": ratio_axis(params, counts),
                "data": data_source(params),
                **{f"{COUNT}{domain}": count for domain, count in counts.items()},
                "start_time": run.info.start_time,
                **run.data.metrics,
            }
        )
    runs = pd.DataFrame(rows, columns=[*KEYS, "start_time"] if not rows else None)
    count_columns = [c for c in runs.columns if c.startswith(COUNT)]
    runs[count_columns] = runs[count_columns].fillna(0).astype(int)  # left out: 0 samples
    if data is not None:
        runs = runs[runs["data"].str.contains(data, regex=False)]
    # Experiments overlap (Table VI's runs are also Table VII's and Table X's): a setting run
    # again with the same seed is the same sample, not another seed, so only its newest run
    # counts.
    newest = runs.sort_values("start_time", kind="stable").drop_duplicates(
        ["model", "mix", "seed"], keep="last"
    )
    repeats = len(runs) - len(newest)
    runs = newest.sort_index().drop(columns="start_time")
    runs.attrs["repeats"] = repeats
    runs.attrs["sweeps"] = list(sweeps.values())
    sources = sorted(runs["data"].unique())
    if len(sources) > 1:
        raise ValueError(
            f"the runs used {len(sources)} data sources ({'; '.join(sources)}); choose one "
            "with data='<part of its name>'"
        )
    return runs
