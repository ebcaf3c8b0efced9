"""Read finished runs from the MLflow store into one table."""

import logging
from collections.abc import Sequence

import mlflow
import pandas as pd

from landslide.lifecycle import is_complete

log = logging.getLogger(__name__)

#: Run columns that identify a training setting (the rest are metrics).
KEYS: tuple[str, ...] = (
    "run_id",
    "run_name",
    "experiment",
    "model",
    "mix",
    "seed",
    "iburi",
    "data",
)


def data_source(params: dict[str, str]) -> str:
    """Say plainly which data a run used: the simulated default world or prepared data."""
    size = params.get("data.world.size")
    if size not in (None, "None"):
        seed = params.get("data.world.seed")
        version = params.get("data.world.generator_version", "?")
        return f"simulated default world v{version} ({size} px per domain, world seed {seed})"
    return f"prepared data ({params.get('data.root', 'unknown root')})"


def collect_runs(
    client: mlflow.MlflowClient,
    experiments: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    data: str | None = None,
) -> pd.DataFrame:
    """One row per complete training run (:func:`landslide.lifecycle.is_complete`): its
    setting and every metric it logged.

    Args:
        client: the MLflow client of the store.
        experiments: experiment names to read; None reads every experiment.
        exclude: experiment names to skip (e.g. the report's own).
        data: keep only runs whose data source (see :func:`data_source`) contains this text;
            required when the runs used more than one source, so numbers from different
            data are never averaged together.

    Returns:
        Columns :data:`KEYS` plus one per metric key (``test/palu/f1``, ``mmd/palu/mean``,
        ...); ``iburi`` is the run's Iburi training count. One row per model, mix and seed
        (the newest run); ``attrs["repeats"]`` counts the older repeats left out.
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
    rows = []
    for run in client.search_runs(ids, "attributes.status = 'FINISHED'", max_results=50_000):
        params = run.data.params
        if "model.name" not in params or not is_complete(run):
            continue  # not a training run, or one that failed after fit
        try:
            seed = int(params["seed"])
            iburi = int(params.get("domain_mix.counts.iburi", 0))
        except ValueError:
            # Recorded before the config was validated (e.g. seed=1.5, trained as seed 1):
            # its setting is unknown, so it cannot be averaged with anything.
            log.warning(
                "skipping run %s (%s): seed=%s or its Iburi count is not an integer",
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
                "iburi": iburi,
                "data": data_source(params),
                "start_time": run.info.start_time,
                **run.data.metrics,
            }
        )
    runs = pd.DataFrame(rows, columns=[*KEYS, "start_time"] if not rows else None)
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
    sources = sorted(runs["data"].unique())
    if len(sources) > 1:
        raise ValueError(
            f"the runs used {len(sources)} data sources ({'; '.join(sources)}); choose one "
            "with data='<part of its name>'"
        )
    return runs
