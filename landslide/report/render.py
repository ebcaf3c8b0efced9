"""Render the report (Markdown, CSV, PNG) and log it to a summary MLflow run."""

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import pandas as pd

from landslide.metrics import METRICS
from landslide.mlflow_store import get_or_create_experiment
from landslide.report.plots import metric_bars, mmd_heatmaps, ratio_curve
from landslide.report.tables import (
    METRIC_TABLES,
    metric_table,
    mmd_table,
    other_results_table,
    ratio_table,
)

CAPTIONS = {
    "VI": "Table VI / Fig. 5: ResU-Net vs ResU-SENet, single-domain benchmarks",
    "VII": "Table VII / Fig. 8: mixes tested on Iburi",
    "VIII": "Table VIII / Fig. 8: mixes tested on Jiuzhaigou",
    "IX": "Table IX / Figs. 9, 11: all mixes tested on Palu (unseen)",
    "X": "Table X: the five networks on the single-domain benchmarks",
    "XI": "Table XI: per-band MMD between each training mix and Palu",
    "XII": "Table XII: per-band MMD between Iburi / Jiuzhaigou and Luding",
}


def cell(mean: float, std: float = 0.0, seeds: int = 1) -> str:
    """A value for Markdown: ``mean ± std`` over several seeds, ``—`` when missing."""
    if mean is None or math.isnan(mean):
        return "—"
    return f"{mean:.4f} ± {std:.4f}" if seeds > 1 else f"{mean:.4f}"


def rank(value: float) -> str:
    """A rank for Markdown, ``—`` when missing."""
    return "—" if math.isnan(value) else f"{value:.0f}"


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (written here: pandas needs the optional tabulate package for it)."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def metric_markdown(table: pd.DataFrame) -> str:
    header = ["test domain", "network", "trained model", "seeds"]
    for metric in METRICS:
        header += [f"{metric} (ours)", f"{metric} (paper)", f"{metric} diff"]
    rows = []
    for r in table.to_dict("records"):
        row = [r["test_domain"], r["network"], r["trained_model"], str(r["seeds"])]
        for m in METRICS:
            row += [
                cell(r[f"{m}_ours"], r[f"{m}_ours_std"], r["seeds"]),
                f"{r[f'{m}_paper']:.4f}",
                cell(r[f"{m}_diff"]),
            ]
        rows.append(row)
    return markdown(header, rows)


def write_report(runs: pd.DataFrame, out_dir: Path) -> Path:
    """Write ``report.md``, one CSV per table and the figures into ``out_dir``.

    Returns:
        The path of ``report.md``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = sorted(runs["data"].unique()) if not runs.empty else []
    simulated = any(s.startswith("simulated") for s in sources)
    lines = [
        "# Results beside the paper (Yang et al., IEEE JSTARS 2024)",
        "",
        f"Runs read from MLflow: {len(runs)}"
        + (
            f" (and {runs.attrs['repeats']} older repeats of the same model, mix and seed, "
            "left out: the newest run of a setting counts)"
            if runs.attrs.get("repeats")
            else ""
        )
        + f". Data: {'; '.join(sources) or 'none'}.",
        "",
    ]
    if simulated:
        lines += [
            "**Numbers marked 'ours' from the simulated default world are not a reproduction"
            " of the paper's numbers**: they come from synthetic scenes standing in for the"
            " paper's Sentinel-2 data. Compare trends (which mix or network wins), not values.",
            "",
        ]
    lines += [
        "Columns: 'ours' is the mean over the seeds found (± their standard deviation when",
        "there are several), 'paper' is the published value, 'diff' is ours minus paper;",
        "— marks a setting with no finished run.",
        "",
    ]

    def figure(fig: plt.Figure, name: str) -> None:
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)
        lines.extend([f"![{name}]({name})", ""])

    for table_id in METRIC_TABLES:
        table = metric_table(runs, table_id)
        table.to_csv(out_dir / f"table_{table_id}.csv", index=False)
        lines += [f"## {CAPTIONS[table_id]}", "", metric_markdown(table), ""]
        figure(metric_bars(table, CAPTIONS[table_id]), f"table_{table_id}.png")

    other = other_results_table(runs)
    other.to_csv(out_dir / "text_results.csv", index=False)
    lines += ["## Figures quoted in the paper's text (Luding, extreme ratios)", ""]
    rows = [
        [
            r["experiment"],
            r["test_domain"],
            r["network"],
            r["trained_model"],
            r["metric"],
            str(r["seeds"]),
            cell(r["ours"], r["ours_std"], r["seeds"]),
            f"{r['paper']:.4f}",
            cell(r["diff"]),
        ]
        for r in other.to_dict("records")
    ]
    header = [
        "experiment",
        "test domain",
        "network",
        "trained model",
        "metric",
        "seeds",
        "ours",
        "paper",
        "diff",
    ]
    lines += [markdown(header, rows), ""]

    for table_id in ("XI", "XII"):
        table = mmd_table(runs, table_id)
        table.to_csv(out_dir / f"table_{table_id}.csv", index=False)
        lines += [
            f"## {CAPTIONS[table_id]}",
            "",
            "Ours are squared MMDs (unbiased, multi-bandwidth Gaussian kernel, logged by"
            " `select_model.py`); the paper's estimator is not given, so compare the ranks of"
            " the mixes (1 = closest to the target), not the values.",
            "",
        ]
        rows = [
            [
                r["source"],
                r["target"],
                r["band"],
                cell(r["ours"]),
                f"{r['paper']:.4f}",
                cell(r["ours_rank"]).split(".")[0],
                f"{r['paper_rank']:.0f}",
            ]
            for r in table.to_dict("records")
        ]
        lines += [
            markdown(
                ["source", "target", "band", "ours", "paper", "rank (ours)", "rank (paper)"], rows
            ),
            "",
        ]
        figure(mmd_heatmaps(table, CAPTIONS[table_id]), f"table_{table_id}.png")

    ratio = ratio_table(runs)
    lines += ["## Beyond the paper: F1 against the mixing ratio", ""]
    if ratio.empty:
        lines += ["No ratio-sweep runs found (`python train.py -m experiment=ratio_sweep`).", ""]
    else:
        ratio.to_csv(out_dir / "ratio_sweep.csv", index=False)
        f1 = [c.removesuffix("_ours") for c in ratio.columns if c.endswith("/f1_ours")]
        rows = [
            [str(r["iburi"]), str(r["seeds"])]
            + [cell(r[f"{c}_ours"], r[f"{c}_ours_std"], r["seeds"]) for c in f1]
            for r in ratio.to_dict("records")
        ]
        lines += [markdown(["Iburi of 700", "seeds", *[f"{c} (ours)" for c in f1]], rows), ""]
        figure(ratio_curve(ratio), "ratio_sweep.png")

    report = out_dir / "report.md"
    report.write_text("\n".join(lines))
    return report


def log_report(
    client: mlflow.MlflowClient,
    experiment: str,
    artifact_location: str,
    out_dir: Path,
    n_runs: int,
) -> str:
    """Log the rendered report as the artifacts of a new summary run; returns its id."""
    experiment_id = get_or_create_experiment(client, experiment, artifact_location)
    run = client.create_run(experiment_id, run_name="report")
    client.log_param(run.info.run_id, "runs_read", n_runs)
    client.log_artifacts(run.info.run_id, str(out_dir), "report")
    client.set_terminated(run.info.run_id)
    return run.info.run_id
