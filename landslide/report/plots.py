"""The paper's figures, redrawn from our runs beside its numbers."""

import math
from collections.abc import Iterator, Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from landslide.bands import BANDS  # noqa: E402
from landslide.metrics import METRICS  # noqa: E402
from landslide.report.tables import (  # noqa: E402
    BAND_IMPORTANCE,
    CAPTIONS,
    METRIC_TABLES,
    MMD_TABLES,
    RATIO_SWEEP,
    paper_table_name,
)


def metric_bars(table: pd.DataFrame, title: str) -> Figure:
    """Figs. 5, 8, 9, 11 style: per metric, ours (with seed spread) beside the paper's bars."""
    several_domains = table["test_domain"].nunique() > 1
    labels = [
        f"{r.network} {r.trained_model}" + (f" @{r.test_domain}" if several_domains else "")
        for r in table.itertuples()
    ]
    x = np.arange(len(labels))
    rows = math.ceil((len(METRICS) + 1) / 3)  # a panel per metric, one for the legend
    fig, axes = plt.subplots(rows, 3, figsize=(max(9.0, 1.1 * len(labels) * 1.5), 3.75 * rows))
    axes = axes.ravel()
    for ax, metric in zip(axes, METRICS, strict=False):
        ours, paper = table[f"{metric}_ours"], table[f"{metric}_paper"]
        ax.bar(
            x - 0.2,
            ours,
            0.4,
            yerr=table[f"{metric}_ours_std"],
            label="ours",
            color="tab:blue",
            capsize=2,
        )
        ax.bar(x + 0.2, paper, 0.4, label="paper", color="tab:gray", hatch="//", edgecolor="white")
        ax.set_title(metric)
        ax.set_xticks(x, labels, rotation=45, ha="right", fontsize=7)
        low = np.nanmin(np.concatenate([ours.to_numpy(float), paper.to_numpy(float), [0.0]]))
        ax.set_ylim(low, 1.0)
        ax.grid(axis="y", alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    for ax in axes[len(METRICS) :]:
        ax.axis("off")
    axes[len(METRICS)].legend(handles, names, loc="center")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def mmd_heatmaps(table: pd.DataFrame, title: str) -> Figure:
    """Tables XI/XII as heatmaps: mixes by bands, ours and the paper's side by side."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.6 * table["source"].nunique() + 2.2))
    for ax, side in zip(axes, ("ours", "paper"), strict=True):
        grid = table.pivot_table(index=["source", "target"], columns="band", values=side)
        grid = grid.reindex(columns=list(BANDS))
        values = grid.to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        if not finite.size:  # e.g. select_model not yet run for this target
            ax.text(0.5, 0.5, f"{side}: no values", ha="center", transform=ax.transAxes)
            ax.set_axis_off()
            continue
        lo, hi = float(finite.min()), float(finite.max())
        hi = hi if hi > lo else lo + 1.0  # one value still needs a scale of non-zero width
        image = ax.imshow(values, cmap="viridis", aspect="auto", vmin=lo, vmax=hi)
        ax.set_xticks(range(len(BANDS)), BANDS, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(grid)), [f"{s} to {t}" for s, t in grid.index], fontsize=7)
        ax.set_title(f"{side} (squared MMD)" if side == "ours" else "paper (MMD as published)")
        fig.colorbar(image, ax=ax)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def ratio_curve(table: pd.DataFrame) -> Figure:
    """F1 per test domain against the axis domain's count, band = seed spread.

    One panel per sweep (axis domain and total) of
    :func:`~landslide.report.tables.ratio_table`.
    """
    sweeps = list(table.groupby(["axis", "rest", "total"], sort=False))
    fig, axes = plt.subplots(1, len(sweeps), figsize=(7 * len(sweeps), 4), squeeze=False)
    for ax, ((axis, rest, total), sweep) in zip(axes[0], sweeps, strict=True):
        for column in [c for c in sweep.columns if c.endswith("/f1_ours")]:
            domain = column.split("/")[1]
            mean = sweep[column]
            std = sweep[column.replace("_ours", "_ours_std")].fillna(0)
            ax.plot(sweep["count"], mean, marker="o", label=domain)
            ax.fill_between(sweep["count"], mean - std, mean + std, alpha=0.2)
        others = "+".join(d.capitalize() for d in rest.split("+") if d)
        label = f"{axis.capitalize()} samples of {total}"
        ax.set_xlabel(f"{label} (the rest {others})" if others else label)
        ax.set_ylabel("test F1 (ours)")
        ax.set_ylim(0, 1)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def band_importance_heatmaps(table: pd.DataFrame) -> Figure:
    """The band importance: per test domain, settings by bands, coloured by the F1 drop."""
    domains = list(dict.fromkeys(table["domain"]))
    bands = [b for b in BANDS if b in set(table["band"])] or list(dict.fromkeys(table["band"]))
    settings = table[["model", "mix"]].drop_duplicates().shape[0]
    fig, axes = plt.subplots(
        1, len(domains), figsize=(4.5 * len(domains), 0.45 * settings + 2.4), squeeze=False
    )
    extent = float(np.nanmax(np.abs(table["f1_drop"]))) or 1.0
    for ax, domain in zip(axes[0], domains, strict=True):
        grid = table[table["domain"] == domain].pivot_table(
            index=["model", "mix"], columns="band", values="f1_drop"
        )
        grid = grid.reindex(columns=bands)
        image = ax.imshow(
            grid.to_numpy(dtype=float), cmap="RdBu_r", vmin=-extent, vmax=extent, aspect="auto"
        )
        ax.set_xticks(range(len(bands)), bands, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(grid)), [f"{m} {x}" for m, x in grid.index], fontsize=7)
        ax.set_title(f"tested on {domain}", fontsize=9)
    fig.colorbar(image, ax=list(axes[0]), label="F1 drop with the band at its mean")
    fig.suptitle("Which bands matter (explain.py, band ablation)")
    return fig


def draw_figures(tables: Mapping[str, pd.DataFrame]) -> Iterator[tuple[str, Figure]]:
    """The report's figures, one at a time (close each before the next is drawn).

    Args:
        tables: the report's tables by name (:func:`~landslide.report.tables.build_tables`).

    Yields:
        A figure's file name (its table's name, ``.png``) and the figure: bars for every
        metric table, heatmaps for every MMD table, the ratio curve when there are ratio runs
        and the band importance when runs were explained.
    """
    for table_id in METRIC_TABLES:
        name = paper_table_name(table_id)
        yield f"{name}.png", metric_bars(tables[name], CAPTIONS[table_id])
    for table_id in MMD_TABLES:
        name = paper_table_name(table_id)
        yield f"{name}.png", mmd_heatmaps(tables[name], CAPTIONS[table_id])
    if not tables[RATIO_SWEEP].empty:
        yield f"{RATIO_SWEEP}.png", ratio_curve(tables[RATIO_SWEEP])
    if not tables[BAND_IMPORTANCE].empty:
        yield f"{BAND_IMPORTANCE}.png", band_importance_heatmaps(tables[BAND_IMPORTANCE])
