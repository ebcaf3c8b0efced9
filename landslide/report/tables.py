"""Our metrics beside the paper's, one table per paper table.

Every value column says whose number it is: ``ours`` (mean over the seeds found),
``ours_std`` (their standard deviation, 0 for one seed), ``paper``, and ``diff``
(ours minus paper).
"""

import numpy as np
import pandas as pd

from landslide.bands import BANDS
from landslide.metrics import METRICS
from landslide.report.paper import paper_mmd, paper_other_results, paper_tables

#: The network used where the paper does not name one (its extreme-ratio figures).
DEFAULT_NETWORK = "resu_senet"
#: Paper tables of the five metrics, in the paper's order.
METRIC_TABLES: tuple[str, ...] = ("VI", "VII", "VIII", "IX", "X")


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
    """One of Tables VI-X: per row of the paper's table, our five metrics beside its own."""
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
            row |= {
                f"{metric}_ours": mean,
                f"{metric}_ours_std": std,
                f"{metric}_paper": float(ref[metric]),
                f"{metric}_diff": mean - float(ref[metric]),
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
    """Table XI or XII: per-band MMD between each training mix and the target, ours beside
    the paper's, with each side's rank of the mixes per band (1 = closest).

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
    """The ratio sweep: F1 per test domain against the Iburi count, over seeds."""
    if runs.empty:
        return pd.DataFrame()
    sweep = runs[runs["mix"].str.startswith("ratio_ib")]
    columns = sorted(c for c in sweep.columns if c.startswith("test/") and c.endswith("/f1"))
    if sweep.empty:
        return pd.DataFrame()
    grouped = sweep.groupby("iburi")[columns]
    table = grouped.mean().add_suffix("_ours")
    table = table.join(grouped.std(ddof=0).add_suffix("_ours_std"))
    table["seeds"] = sweep.groupby("iburi").size()
    return table.reset_index()
