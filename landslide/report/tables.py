"""Our metrics beside the paper's, one table per paper table.

Every value column says whose number it is: ``ours`` (mean over the seeds found),
``ours_std`` (their standard deviation, 0 for one seed), ``paper``, and ``diff``
(ours minus paper).
"""

import numpy as np
import pandas as pd

from landslide.bands import BANDS
from landslide.metrics import METRICS
from landslide.report.collect import COUNT
from landslide.report.paper import paper_mmd, paper_other_results, paper_tables

#: The network used where the paper does not name one (its extreme-ratio figures).
DEFAULT_NETWORK = "resu_senet"
#: Paper tables of the five metrics, in the paper's order.
METRIC_TABLES: tuple[str, ...] = ("VI", "VII", "VIII", "IX", "X")
#: Paper tables of the per-band MMD.
MMD_TABLES: tuple[str, ...] = ("XI", "XII")
#: What each paper table shows (the report's headings and figure titles).
CAPTIONS = {
    "VI": "Table VI / Fig. 5: ResU-Net vs ResU-SENet, single-domain benchmarks",
    "VII": "Table VII / Fig. 8: mixes tested on Iburi",
    "VIII": "Table VIII / Fig. 8: mixes tested on Jiuzhaigou",
    "IX": "Table IX / Figs. 9, 11: all mixes tested on Palu (unseen)",
    "X": "Table X: the five networks on the single-domain benchmarks",
    "XI": "Table XI: per-band MMD between each training mix and Palu",
    "XII": "Table XII: per-band MMD between Iburi / Jiuzhaigou and Luding",
}
#: Names (file stems) of the report's tables that are not a paper table
#: (:func:`paper_table_name`).
TEXT_RESULTS = "text_results"
RATIO_SWEEP = "ratio_sweep"
BAND_IMPORTANCE = "band_importance"
#: Prefix of the band-importance metrics ``explain.py`` logs: ``explain/<domain>/<measure>/<band>``.
EXPLAIN = "explain/"


def paper_table_name(table: str) -> str:
    """The report's name (file stem) of a paper table: ``table_VI``."""
    return f"table_{table}"


def ours(runs: pd.DataFrame, network: str, mix: str, key: str) -> tuple[float, float, int]:
    """Mean, standard deviation and count over the runs of one setting that logged ``key``."""
    if network == "unspecified":
        network = DEFAULT_NETWORK
    if runs.empty or key not in runs:
        return np.nan, np.nan, 0
    values = runs.loc[(runs["model"] == network) & (runs["mix"] == mix), key].dropna()
    if values.empty:
        return np.nan, np.nan, 0
    return float(values.mean()), float(values.std(ddof=0)), int(values.size)


def metric_table(runs: pd.DataFrame, table: str) -> pd.DataFrame:
    """One of Tables VI-X: per row of the paper's table, our metrics beside its own.

    Every metric of :data:`landslide.metrics.METRICS` gets its columns; the paper's value is
    NaN for a metric the paper does not give.
    """
    rows = []
    for _, ref in paper_tables().query("table == @table").iterrows():
        row = {
            "test_domain": ref["test_domain"],
            "network": ref["network"],
            "trained_model": ref["trained_model"],
        }
        for metric in METRICS:
            key = f"test/{ref['test_domain']}/{metric}"
            mean, std, n = ours(runs, ref["network"], ref["trained_model"], key)
            paper = float(ref[metric]) if metric in ref else np.nan
            row |= {
                f"{metric}_ours": mean,
                f"{metric}_ours_std": std,
                f"{metric}_paper": paper,
                f"{metric}_diff": mean - paper,
            }
            row["seeds"] = max(n, row.get("seeds", 0))
        rows.append(row)
    return pd.DataFrame(rows)


def other_results_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Figures quoted in the paper's text (Luding application, extreme ratios)."""
    rows = []
    for _, ref in paper_other_results().iterrows():
        key = f"test/{ref['test_domain']}/{ref['metric']}"
        mean, std, n = ours(runs, ref["network"], ref["trained_model"], key)
        rows.append(
            {
                "experiment": ref["experiment"],
                "test_domain": ref["test_domain"],
                "network": DEFAULT_NETWORK if ref["network"] == "unspecified" else ref["network"],
                "trained_model": ref["trained_model"],
                "metric": ref["metric"],
                "ours": mean,
                "ours_std": std,
                "paper": float(ref["value"]),
                "diff": mean - float(ref["value"]),
                "seeds": n,
            }
        )
    return pd.DataFrame(rows)


def mmd_table(runs: pd.DataFrame, table: str) -> pd.DataFrame:
    """Table XI or XII: per-band MMD between each training mix and the target.

    Ours beside the paper's, with each side's rank of the mixes per band (1 = closest).

    Our values are squared MMDs with our kernel (see :mod:`landslide.mmd`); the paper does
    not give its estimator, so the scales differ and the ranks are what compares.
    """
    ref = paper_mmd().query("table == @table")
    rows = []
    for _, r in ref.iterrows():
        for band in BANDS:
            mean = np.nan
            if not runs.empty:
                key = f"mmd/{r['target']}/{band}"
                values = runs.loc[runs["mix"] == r["source"], key] if key in runs else []
                mean = float(np.mean(values)) if len(values) else np.nan
            rows.append(
                {
                    "source": r["source"],
                    "target": r["target"],
                    "band": band,
                    "ours": mean,
                    "paper": float(r[band]),
                }
            )
    out = pd.DataFrame(rows)
    for side in ("ours", "paper"):
        out[f"{side}_rank"] = out.groupby(["target", "band"])[side].rank(method="min")
    return out


def ratio_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The ratio sweeps: F1 per test domain against the count of the domain a mix varies.

    The varied domain is a run's ``ratio_axis`` (:func:`landslide.report.collect.ratio_axis`);
    F1 is averaged over seeds.

    Returns:
        One row per axis domain, total and axis count, sorted: ``axis``, ``rest`` (the mix's
        other domains, joined by ``+``), ``total`` (the mix's samples), ``count`` (the axis
        domain's), ``<test/<domain>/f1>_ours`` and ``_ours_std`` per test domain, and
        ``seeds``. Empty when no run is of a ratio mix.
    """
    if runs.empty:
        return pd.DataFrame()
    sweep = runs[runs["ratio_axis"].notna()]
    if sweep.empty:
        return pd.DataFrame()
    columns = sorted(c for c in sweep.columns if c.startswith("test/") and c.endswith("/f1"))
    counts = sweep[[c for c in sweep.columns if c.startswith(COUNT)]]
    setting = pd.DataFrame(
        {
            "axis": sweep["ratio_axis"],
            "total": counts.sum(axis=1),
            "count": [counts.at[i, f"{COUNT}{axis}"] for i, axis in sweep["ratio_axis"].items()],
        }
    )
    grouped = sweep[columns].groupby([setting["axis"], setting["total"], setting["count"]])
    table = grouped.mean().add_suffix("_ours")
    table = table.join(grouped.std(ddof=0).add_suffix("_ours_std"))
    table["seeds"] = grouped.size()
    table = table.reset_index()
    rest = {
        axis: "+".join(
            c.removeprefix(COUNT)
            for c in counts.columns
            if c != f"{COUNT}{axis}" and (counts.loc[setting["axis"] == axis, c] > 0).any()
        )
        for axis in table["axis"].unique()
    }
    table.insert(1, "rest", table["axis"].map(rest))
    return table


def band_importance_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Beyond the paper: which bands each setting relies on, from ``explain.py``'s metrics.

    Returns:
        One row per network, mix, test domain and band with a logged F1 drop: ``model``,
        ``mix``, ``domain``, ``band``, ``f1_drop`` and ``f1_drop_std`` (over seeds),
        ``ig_share`` (mean share of integrated gradients, NaN if not measured) and ``seeds``.
        Empty when no run was explained.
    """
    columns = [c for c in runs.columns if c.startswith(EXPLAIN) and "/f1_drop/" in c]
    if runs.empty or not columns:
        return pd.DataFrame()
    rows = []
    for (model, mix), group in runs.groupby(["model", "mix"], sort=True):
        for column in columns:
            domain, _, band = column.removeprefix(EXPLAIN).split("/", 2)
            drops = group[column].dropna()
            if drops.empty:
                continue
            share = group.get(f"{EXPLAIN}{domain}/ig_share/{band}", pd.Series(dtype=float))
            rows.append(
                {
                    "model": model,
                    "mix": mix,
                    "domain": domain,
                    "band": band,
                    "f1_drop": float(drops.mean()),
                    "f1_drop_std": float(drops.std(ddof=0)),
                    "ig_share": float(share.loc[drops.index].mean()),
                    "seeds": int(drops.size),
                }
            )
    if not rows:
        return pd.DataFrame()
    order = {band: i for i, band in enumerate(BANDS)}
    table = pd.DataFrame(rows)
    table["_order"] = table["band"].map(order).fillna(len(order))
    return (
        table.sort_values(["domain", "model", "mix", "_order"])
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def build_tables(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Every table of the report, by name (file stem), in the report's order.

    The metric tables, the figures quoted in the text, the MMD tables, the ratio sweep
    (empty without ratio runs) and the band importance (empty without ``explain.py``).
    """
    tables = {paper_table_name(t): metric_table(runs, t) for t in METRIC_TABLES}
    tables[TEXT_RESULTS] = other_results_table(runs)
    tables |= {paper_table_name(t): mmd_table(runs, t) for t in MMD_TABLES}
    tables[RATIO_SWEEP] = ratio_table(runs)
    tables[BAND_IMPORTANCE] = band_importance_table(runs)
    return tables
