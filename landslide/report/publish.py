"""Write the report into a folder (Markdown, CSV, PNG) and log it to a summary MLflow run."""

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import pandas as pd

from landslide.mlflow_store import get_or_create_experiment
from landslide.report.markdown import render_markdown
from landslide.report.plots import draw_figures
from landslide.report.tables import build_tables

#: Resolution of the report's PNGs.
DPI = 110


def write_report(runs: pd.DataFrame, out_dir: Path) -> Path:
    """Write ``report.md``, one CSV per table and the figures into ``out_dir``.

    Args:
        runs: the runs to report (:func:`landslide.report.collect.collect_runs`).
        out_dir: the folder to write into (created if missing).

    Returns:
        The path of ``report.md``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = build_tables(runs)
    write_tables(tables, out_dir)
    figures = save_figures(tables, out_dir)
    report = out_dir / "report.md"
    report.write_text(render_markdown(runs, tables, figures))
    return report


def write_tables(tables: Mapping[str, pd.DataFrame], out_dir: Path) -> None:
    """Write every non-empty table as ``<name>.csv`` into ``out_dir``."""
    for name, table in tables.items():
        if not table.empty:
            table.to_csv(out_dir / f"{name}.csv", index=False)


def save_figures(tables: Mapping[str, pd.DataFrame], out_dir: Path) -> list[str]:
    """Draw the report's figures and save them as PNGs into ``out_dir``.

    Returns:
        The figures' file names (:func:`landslide.report.plots.draw_figures`).
    """
    names = []
    for name, fig in draw_figures(tables):
        fig.savefig(out_dir / name, dpi=DPI)
        plt.close(fig)
        names.append(name)
    return names


def log_report(
    client: mlflow.MlflowClient,
    experiment: str,
    artifact_location: str,
    out_dir: Path,
    n_runs: int,
    sweeps: Sequence[str] = (),
) -> str:
    """Log the written report as the artifacts of a new summary run; returns its id.

    ``sweeps`` names the sweeps the report is restricted to, logged as the param ``sweep``.
    """
    experiment_id = get_or_create_experiment(client, experiment, artifact_location)
    run = client.create_run(experiment_id, run_name="report")
    client.log_param(run.info.run_id, "runs_read", n_runs)
    if sweeps:
        client.log_param(run.info.run_id, "sweep", ", ".join(sweeps))
    client.log_artifacts(run.info.run_id, str(out_dir), "report")
    client.set_terminated(run.info.run_id)
    return run.info.run_id
