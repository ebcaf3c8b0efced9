"""The report on a small MLflow store made by the test."""

import math
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import pandas as pd
import pytest

from landslide.lifecycle import COMPLETE
from landslide.metrics import METRICS
from landslide.report import markdown as report_markdown
from landslide.report import plots as report_plots
from landslide.report import tables as report_tables
from landslide.report.collect import collect_runs
from landslide.report.markdown import render_markdown
from landslide.report.plots import ratio_curve
from landslide.report.publish import log_report, write_report
from landslide.report.tables import build_tables, ratio_table

WORLD = {
    "data.world.size": "1024",
    "data.world.seed": "0",
    "data.world.generator_version": "2",
    "data.root": "/x/default_world",
}


#: Training counts of the fixed mixes the tests log.
COUNTS = {"ib700": {"iburi": 700}, "j700": {"jiuzhaigou": 700}}


def ratio_params(axis: str, rest: str, count: int, total: int = 700) -> dict[str, str]:
    """The domain_mix params a run of ``conf/domain_mix/ratio.yaml`` logs (its count knob is
    named after the domain it varies)."""
    return {
        f"domain_mix.{axis}": str(count),
        "domain_mix.total": str(total),
        f"domain_mix.counts.{axis}": str(count),
        f"domain_mix.counts.{rest}": str(total - count),
    }


def add_run(client, experiment_id, model, mix, seed, metrics, params=WORLD, status="FINISHED"):
    """Log a training run as train.py does: its flat config as params, its test metrics."""
    run = client.create_run(experiment_id, run_name=f"{model}-{mix}-seed{seed}")
    counts = {f"domain_mix.counts.{d}": str(n) for d, n in COUNTS.get(mix, {}).items()}
    for key, value in {
        "model.name": model,
        "domain_mix.name": mix,
        **counts,
        "seed": str(seed),
        **params,
    }.items():
        client.log_param(run.info.run_id, key, value)
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, key, value)
    if status == "FINISHED":
        client.set_tag(run.info.run_id, COMPLETE, "true")  # as train.py marks a complete run
    client.set_terminated(run.info.run_id, status)


def explained(**drops: float) -> dict[str, float]:
    """The metrics explain.py logs for Palu: each band's F1 drop and IG share."""
    metrics = {f"explain/palu/f1_drop/{band}": drop for band, drop in drops.items()}
    return metrics | {f"explain/palu/ig_share/{band}": 0.5 for band in drops}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> mlflow.MlflowClient:
    """One store for the module (creating an MLflow database takes seconds)."""
    tmp_path = tmp_path_factory.mktemp("store")
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.create_experiment("landslide", artifact_location=str(tmp_path / "artifacts"))
    add_run(
        client,
        exp,
        "resu_senet",
        "ib700",
        1,
        {"test/iburi/f1": 0.80, "test/iburi/mcc": 0.7, "mmd/palu/slope": 0.3}
        | explained(slope=0.2, post_ndvi=0.1),
    )
    add_run(
        client,
        exp,
        "resu_senet",
        "ib700",
        2,
        {"test/iburi/f1": 0.90, "test/iburi/mcc": 0.8, "mmd/palu/slope": 0.3}
        | explained(slope=0.4, post_ndvi=0.1),
    )
    add_run(
        client,
        exp,
        "resu_senet",
        "j700",
        1,
        {"mmd/palu/slope": 0.1} | explained(slope=0.05, post_ndvi=0.3),
    )
    add_run(client, exp, "resunet", "ib700", 1, {"test/iburi/f1": 0.5}, status="FAILED")
    for iburi, f1 in ((0, 0.2), (700, 0.6)):
        for seed, delta in ((1, 0.0), (2, 0.1)):
            add_run(
                client,
                exp,
                "resu_senet",
                f"ratio_ib{iburi}",
                seed,
                {"test/palu/f1": f1 + delta},
                params=WORLD | ratio_params("iburi", "jiuzhaigou", iburi),
            )
    return client


@pytest.fixture(scope="module")
def report(store: mlflow.MlflowClient, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of the store's runs, written once for the module (figures take seconds)."""
    return write_report(collect_runs(store), tmp_path_factory.mktemp("report"))


def test_tables_put_our_numbers_beside_the_papers(store, report: Path) -> None:
    runs = collect_runs(store)
    assert len(runs) == 7  # the failed run is left out
    assert runs.loc[runs["mix"] == "ib700", "count/iburi"].tolist() == [700, 700]
    assert runs.loc[runs["mix"] == "ib700", "count/jiuzhaigou"].tolist() == [0, 0]
    table = pd.read_csv(report.parent / "table_VI.csv")
    row = table.query("network == 'resu_senet' and test_domain == 'iburi'").iloc[0]
    assert row["f1_ours"] == pytest.approx(0.85)
    assert row["f1_ours_std"] == pytest.approx(0.05)
    assert row["f1_paper"] == pytest.approx(0.8530)  # Table VI as published
    assert row["f1_diff"] == pytest.approx(0.85 - 0.8530)
    assert row["seeds"] == 2
    resunet = table.query("network == 'resunet' and test_domain == 'iburi'").iloc[0]
    assert math.isnan(resunet["f1_ours"]) and resunet["f1_paper"] == pytest.approx(0.8246)

    text = report.read_text()
    assert "not a reproduction of the paper's numbers" in text
    assert "simulated default world v2 (1024 px per domain, world seed 0)" in text
    assert "| iburi | resu_senet | ib700 | 2 | — | 0.8766 | — |" in text
    assert "0.8500 ± 0.0500 | 0.8530 | -0.0030 |" in text
    assert "| Iburi of 700 | seeds | test/iburi/f1 (ours) | test/palu/f1 (ours) |\n" in text
    assert "| 700 | 2 | — | 0.6500 ± 0.0500 |" in text
    for name in ("table_VI.png", "table_IX.png", "table_XI.png", "ratio_sweep.png"):
        assert (report.parent / name).stat().st_size > 10_000

    mmd = pd.read_csv(report.parent / "table_XI.csv").query("band == 'slope'")
    ours = dict(zip(mmd["source"], mmd["ours"], strict=True))
    assert ours["ib700"] == pytest.approx(0.3) and ours["j700"] == pytest.approx(0.1)
    ranks = dict(zip(mmd["source"], mmd["ours_rank"], strict=True))
    assert ranks["j700"] == 1 and ranks["ib700"] == 2

    ratio = pd.read_csv(report.parent / "ratio_sweep.csv")
    assert list(ratio["axis"]) == ["iburi", "iburi"] and list(ratio["rest"]) == ["jiuzhaigou"] * 2
    assert list(ratio["count"]) == [0, 700] and list(ratio["total"]) == [700, 700]
    assert list(ratio["test/palu/f1_ours"]) == pytest.approx([0.25, 0.65])
    assert list(ratio["test/palu/f1_ours_std"]) == pytest.approx([0.05, 0.05])


def test_band_importance_compares_the_explained_settings(report: Path) -> None:
    table = pd.read_csv(report.parent / "band_importance.csv")
    ib700 = table.query("mix == 'ib700'").set_index("band")
    assert ib700.loc["slope", "f1_drop"] == pytest.approx(0.3)
    assert ib700.loc["slope", "f1_drop_std"] == pytest.approx(0.1)
    assert ib700.loc["slope", "seeds"] == 2 and ib700.loc["slope", "ig_share"] == 0.5
    assert list(table["band"][:2]) == ["slope", "post_ndvi"]  # the project's band order
    text = report.read_text()
    assert "| palu: network | mix | slope | post_ndvi | most needed |" in text
    assert "| resu_senet | ib700 | 0.3000 ± 0.1000 | 0.1000 ± 0.0000 | slope |" in text
    assert "| resu_senet | j700 | 0.0500 | 0.3000 | post_ndvi |" in text
    assert (report.parent / "band_importance.png").stat().st_size > 10_000


def test_report_is_logged_to_a_summary_run(store, report: Path, tmp_path: Path) -> None:
    run_id = log_report(store, "reports", str(tmp_path / "artifacts"), report.parent, 7)
    files = {a.path for a in store.list_artifacts(run_id, "report")}
    assert {"report/report.md", "report/table_VI.csv", "report/table_VI.png"} <= files
    # A second report does not read the first one's summary run as a training run.
    assert len(collect_runs(store, exclude=["reports"])) == 7


def test_runs_on_different_data_are_never_averaged(store, tmp_path: Path) -> None:
    exp = store.get_experiment_by_name("landslide").experiment_id
    prepared = {"data.world": "None", "data.root": "/data/prepared"}
    add_run(store, exp, "resu_senet", "ib700", 3, {"test/iburi/f1": 0.1}, params=prepared)
    try:
        with pytest.raises(ValueError, match="used 2 data sources .* choose one with data="):
            collect_runs(store)
        only_prepared = collect_runs(store, data="prepared")
        assert list(only_prepared["seed"]) == [3]
    finally:
        (extra,) = collect_runs(store, data="prepared")["run_id"]
        store.delete_run(extra)
    with pytest.raises(ValueError, match=r"experiments \['nope'\] do not exist"):
        collect_runs(store, ["nope"])


def test_a_setting_run_again_counts_once_with_its_newest_run(store) -> None:
    exp = store.get_experiment_by_name("landslide").experiment_id
    # Table VI's run of resu_senet ib700 seed 2, repeated by another experiment.
    add_run(store, exp, "resu_senet", "ib700", 2, {"test/iburi/f1": 0.70})
    try:
        runs = collect_runs(store)
        assert len(runs) == 7 and runs.attrs["repeats"] == 1
        f1 = runs.query("model == 'resu_senet' and mix == 'ib700'")["test/iburi/f1"]
        assert sorted(f1) == pytest.approx([0.70, 0.80])  # seed 2's newest run replaces 0.90
        text = render_markdown(runs, build_tables(runs), figures=())
        assert "Runs read from MLflow: 7 (and 1 older repeats" in text
        assert "0.7500 ± 0.0500 | 0.8530 | -0.1030 |" in text
    finally:
        newest = store.search_runs([exp], order_by=["attributes.start_time DESC"])[0]
        store.delete_run(newest.info.run_id)


def test_a_run_logged_with_a_fractional_seed_is_left_out(
    store, caplog: pytest.LogCaptureFixture
) -> None:
    exp = store.get_experiment_by_name("landslide").experiment_id
    # Logged by a version that ran seed=1.5 as seed 1: its setting is unknown.
    add_run(store, exp, "resu_senet", "ib700", 1.5, {"test/iburi/f1": 0.10})
    try:
        runs = collect_runs(store, exclude=["reports"])
        assert len(runs) == 7 and 0.10 not in set(runs["test/iburi/f1"])
        assert "seed=1.5 or a domain_mix count is not an integer" in caplog.text
    finally:
        newest = store.search_runs([exp], order_by=["attributes.start_time DESC"])[0]
        store.delete_run(newest.info.run_id)


def test_a_ratio_sweep_over_other_domains_is_read_from_the_runs_config(store) -> None:
    """A ratio sweep over two other domains (here prepared Nepal and Haiti, 0 to 700 Nepal
    samples of 700) is reported by its runs' params alone."""
    exp = store.create_experiment("nepal_haiti")
    prepared = {"data.world": "None", "data.root": "/data/prepared"}
    f1 = {0: (0.30, 0.40), 350: (0.50, 0.70), 700: (0.80, 0.80)}  # Nepal F1 of seeds 1, 2
    try:
        for nepal, scores in f1.items():
            for seed, score in enumerate(scores, 1):
                params = prepared | ratio_params("nepal", "haiti", nepal)
                metrics = {"test/nepal/f1": score, "test/haiti/f1": 1 - score}
                add_run(store, exp, "resu_senet", f"ratio_nepal{nepal}", seed, metrics, params)
        runs = collect_runs(store, ["nepal_haiti"])
        assert set(runs["ratio_axis"]) == {"nepal"}
        table = ratio_table(runs)
        setting = table[["axis", "rest", "total", "count", "seeds"]].to_numpy().tolist()
        assert setting == [["nepal", "haiti", 700, n, 2] for n in (0, 350, 700)]
        assert list(table["test/nepal/f1_ours"]) == pytest.approx([0.35, 0.60, 0.80])
        assert list(table["test/nepal/f1_ours_std"]) == pytest.approx([0.05, 0.10, 0.0])
        assert list(table["test/haiti/f1_ours"]) == pytest.approx([0.65, 0.40, 0.20])

        fig = ratio_curve(table)
        (ax,) = fig.axes
        assert ax.get_xlabel() == "Nepal samples of 700 (the rest Haiti)"
        curves = {line.get_label(): line for line in ax.lines}
        assert list(curves["nepal"].get_xdata()) == [0, 350, 700]
        assert list(curves["nepal"].get_ydata()) == pytest.approx([0.35, 0.60, 0.80])
        assert list(curves["haiti"].get_ydata()) == pytest.approx([0.65, 0.40, 0.20])
        plt.close(fig)

        text = render_markdown(runs, build_tables(runs), figures=("ratio_sweep.png",))
        assert "| Nepal of 700 | seeds | test/haiti/f1 (ours) | test/nepal/f1 (ours) |" in text
        assert "| 350 | 2 | 0.4000 ± 0.1000 | 0.6000 ± 0.1000 |" in text
        assert "![ratio_sweep.png](ratio_sweep.png)" in text
    finally:
        store.delete_experiment(exp)


def test_a_new_metric_gets_its_columns_and_panel(monkeypatch: pytest.MonkeyPatch) -> None:
    """A metric added to landslide.metrics.METRICS shows up in Tables VI-X with no report
    edit; the paper's value is missing ('—') where the paper does not give it."""
    for module in (report_tables, report_markdown, report_plots):
        monkeypatch.setattr(module, "METRICS", (*METRICS, "accuracy"))
    runs = pd.DataFrame(
        {
            "model": ["resu_senet"],
            "mix": ["ib700"],
            "seed": [1],
            "test/iburi/f1": [0.8],
            "test/iburi/accuracy": [0.9],
        }
    )
    table = report_tables.metric_table(runs, "VI")
    row = table.query("network == 'resu_senet' and test_domain == 'iburi'").iloc[0]
    assert row["accuracy_ours"] == pytest.approx(0.9) and math.isnan(row["accuracy_paper"])
    text = report_markdown.metric_markdown(table)
    assert "| accuracy (ours) | accuracy (paper) | accuracy diff |" in text
    assert "| 0.9000 | — | — |" in text
    fig = report_plots.metric_bars(table, "Table VI")
    panels = [ax.get_title() for ax in fig.axes]
    assert panels[: len(METRICS) + 1] == [*METRICS, "accuracy"]
    assert fig.axes[len(METRICS) + 1].get_legend() is not None
    plt.close(fig)
