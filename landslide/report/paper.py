"""The paper's published numbers, as shipped beside this module."""

from functools import cache
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
#: The paper's MMD columns (Sentinel-2 band numbers) to our band names.
MMD_BANDS: dict[str, str] = {
    "pre_ndvi": "pre_ndvi",
    "post_ndvi": "post_ndvi",
    "pre_b2": "pre_blue",
    "pre_b3": "pre_green",
    "pre_b4": "pre_red",
    "post_b2": "post_blue",
    "post_b3": "post_green",
    "post_b4": "post_red",
    "slope": "slope",
    "hillshade": "hillshade",
}


@cache
def paper_tables() -> pd.DataFrame:
    """Tables VI-X: one row per (table, test domain, network, trained model), five metrics."""
    return pd.read_csv(HERE / "paper_tables.csv")


@cache
def paper_other_results() -> pd.DataFrame:
    """Figures quoted in the text (Luding application, extreme ratios), one metric a row."""
    return pd.read_csv(HERE / "paper_other_results.csv")


@cache
def paper_mmd() -> pd.DataFrame:
    """Tables XI and XII: per-band MMD between a training mix and a target, our band names."""
    return pd.read_csv(HERE / "paper_mmd.csv").rename(columns=MMD_BANDS)
