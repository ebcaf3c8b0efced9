"""The report's text: Markdown with our numbers beside the paper's, table by table."""

import math
from collections.abc import Collection, Mapping, Sequence

import pandas as pd

from landslide.metrics import METRICS
from landslide.report.tables import (
    BAND_IMPORTANCE,
    CAPTIONS,
    METRIC_TABLES,
    MMD_TABLES,
    RATIO_SWEEP,
    TEXT_RESULTS,
    paper_table_name,
)


def cell(mean: float, std: float = 0.0, seeds: int = 1) -> str:
    """A value for Markdown: ``mean ± std`` over several seeds, ``—`` when missing."""
    if mean is None or math.isnan(mean):
        return "—"
    return f"{mean:.4f} ± {std:.4f}" if seeds > 1 else f"{mean:.4f}"


def rank(value: float) -> str:
    """A rank for Markdown, ``—`` when missing."""
    return "—" if math.isnan(value) else f"{value:.0f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (written here: pandas needs the optional tabulate package for it)."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def metric_markdown(table: pd.DataFrame) -> str:
    """One of Tables VI-X: per row, our metrics beside the paper's and their difference."""
    header = ["test domain", "network", "trained model", "seeds"]
    for metric in METRICS:
        header += [f"{metric} (ours)", f"{metric} (paper)", f"{metric} diff"]
    rows = []
    for r in table.to_dict("records"):
        row = [r["test_domain"], r["network"], r["trained_model"], str(r["seeds"])]
        for m in METRICS:
            row += [
                cell(r[f"{m}_ours"], r[f"{m}_ours_std"], r["seeds"]),
                cell(r[f"{m}_paper"]),
                cell(r[f"{m}_diff"]),
            ]
        rows.append(row)
    return markdown_table(header, rows)


def text_results_markdown(table: pd.DataFrame) -> str:
    """The figures quoted in the paper's text, ours beside them."""
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
        for r in table.to_dict("records")
    ]
    return markdown_table(header, rows)


def mmd_markdown(table: pd.DataFrame) -> str:
    """Table XI or XII: per mix and band, our MMD and the paper's, with their ranks."""
    header = ["source", "target", "band", "ours", "paper", "rank (ours)", "rank (paper)"]
    rows = [
        [
            r["source"],
            r["target"],
            r["band"],
            cell(r["ours"]),
            f"{r['paper']:.4f}",
            rank(r["ours_rank"]),
            rank(r["paper_rank"]),
        ]
        for r in table.to_dict("records")
    ]
    return markdown_table(header, rows)


def ratio_markdown(table: pd.DataFrame) -> list[str]:
    """The ratio sweeps, one Markdown table per axis domain and total.

    A table's first column is headed by its sweep (``Iburi of 700``); its rows are the axis
    counts, with F1 per test domain over the seeds.
    """
    f1 = [c.removesuffix("_ours") for c in table.columns if c.endswith("/f1_ours")]
    tables = []
    for (axis, total), sweep in table.groupby(["axis", "total"], sort=False):
        rows = [
            [str(r["count"]), str(r["seeds"])]
            + [cell(r[f"{c}_ours"], r[f"{c}_ours_std"], r["seeds"]) for c in f1]
            for r in sweep.to_dict("records")
        ]
        header = [f"{axis.capitalize()} of {total}", "seeds", *[f"{c} (ours)" for c in f1]]
        tables.append(markdown_table(header, rows))
    return tables


def band_importance_markdown(table: pd.DataFrame) -> list[str]:
    """The band importance, one Markdown table per test domain.

    Rows are the explained settings (network and mix), cells each band's F1 drop when set
    to its mean (± over seeds); the last column names the band whose loss hurts most.
    """
    bands = list(dict.fromkeys(table["band"]))
    tables = []
    for domain, part in table.groupby("domain", sort=False):
        rows = []
        for (model, mix), setting in part.groupby(["model", "mix"], sort=False):
            by_band = setting.set_index("band")
            cells = [
                cell(by_band.at[b, "f1_drop"], by_band.at[b, "f1_drop_std"], by_band.at[b, "seeds"])
                if b in by_band.index
                else "—"
                for b in bands
            ]
            rows.append([model, mix, *cells, str(by_band["f1_drop"].idxmax())])
        header = [f"{domain}: network", "mix", *bands, "most needed"]
        tables.append(markdown_table(header, rows))
    return tables


def introduction(runs: pd.DataFrame) -> list[str]:
    """The report's title, which runs and data it reads, and how to read its columns."""
    sources = sorted(runs["data"].unique()) if not runs.empty else []
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
        + f". Data: {'; '.join(sources) or 'none'}."
        + (
            f" Sweep: {', '.join(runs.attrs['sweeps'])} (its runs only)."
            if runs.attrs.get("sweeps")
            else ""
        ),
        "",
    ]
    if any(s.startswith("simulated") for s in sources):
        lines += [
            "**Numbers marked 'ours' from the simulated default world are not a reproduction"
            " of the paper's numbers**: they come from synthetic scenes standing in for the"
            " paper's Sentinel-2 data. Compare trends (which mix or network wins), not values.",
            "",
        ]
    return lines + [
        "Columns: 'ours' is the mean over the seeds found (± their standard deviation when",
        "there are several), 'paper' is the published value, 'diff' is ours minus paper;",
        "— marks a setting with no finished run.",
        "",
    ]


def render_markdown(
    runs: pd.DataFrame, tables: Mapping[str, pd.DataFrame], figures: Collection[str]
) -> str:
    """The report's Markdown: every table of the report with a link to its figure.

    Args:
        runs: the runs read (:func:`landslide.report.collect.collect_runs`).
        tables: the report's tables by name (:func:`landslide.report.tables.build_tables`).
        figures: the file names of the figures written beside the report; a table's figure
            (``<table name>.png``) is linked when it is one of them.

    Returns:
        The text of ``report.md``.
    """
    lines = introduction(runs)

    def figure(name: str) -> list[str]:
        file = f"{name}.png"
        return [f"![{file}]({file})", ""] if file in figures else []

    for table_id in METRIC_TABLES:
        name = paper_table_name(table_id)
        lines += [f"## {CAPTIONS[table_id]}", "", metric_markdown(tables[name]), ""]
        lines += figure(name)

    lines += ["## Figures quoted in the paper's text (Luding, extreme ratios)", ""]
    lines += [text_results_markdown(tables[TEXT_RESULTS]), ""]

    for table_id in MMD_TABLES:
        name = paper_table_name(table_id)
        lines += [
            f"## {CAPTIONS[table_id]}",
            "",
            "Ours are squared MMDs (unbiased, multi-bandwidth Gaussian kernel, logged by"
            " `select_model.py`); the paper's estimator is not given, so compare the ranks of"
            " the mixes (1 = closest to the target), not the values.",
            "",
            mmd_markdown(tables[name]),
            "",
        ]
        lines += figure(name)

    lines += ["## Beyond the paper: F1 against the mixing ratio", ""]
    ratio = tables[RATIO_SWEEP]
    if ratio.empty:
        lines += ["No ratio-sweep runs found (`python train.py -m experiment=ratio_sweep`).", ""]
    else:
        for table in ratio_markdown(ratio):
            lines += [table, ""]
        lines += figure(RATIO_SWEEP)

    lines += ["## Beyond the paper: which bands matter (band ablation)", ""]
    bands = tables[BAND_IMPORTANCE]
    if bands.empty:
        lines += ["No explained runs found (`python explain.py model=<run>`).", ""]
    else:
        lines += [
            "F1 drop on each test domain when one band is set to its mean over the test"
            " patches (`explain.py`; positive: the model needs the band). Compare rows to see"
            " whether mixing changes which bands matter.",
            "",
        ]
        for table in band_importance_markdown(bands):
            lines += [table, ""]
        lines += figure(BAND_IMPORTANCE)
    return "\n".join(lines)
