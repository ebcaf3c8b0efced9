"""Render the paper's tables and figures from MLflow beside its numbers: ``python report.py``."""

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from landslide.errors import UserError
from landslide.mlflow_store import open_store
from landslide.report.collect import collect_runs
from landslide.report.publish import log_report, write_report

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="conf", config_name="report")
def main(cfg: DictConfig) -> None:
    try:
        client = open_store(cfg.tracking_uri)
    except UserError as err:
        raise SystemExit(f"report.py: {err}") from None
    experiments = list(cfg.experiments) if cfg.experiments else None
    try:
        runs = collect_runs(client, experiments, [cfg.report_experiment], cfg.data, cfg.sweep)
    except UserError as err:
        raise SystemExit(f"report.py: {err}") from None
    report = write_report(runs, Path(cfg.out_dir))
    run_id = log_report(
        client,
        cfg.report_experiment,
        cfg.artifact_location,
        report.parent,
        len(runs),
        runs.attrs["sweeps"],
    )
    log.info("Report of %d runs: %s (MLflow run %s)", len(runs), report, run_id)


if __name__ == "__main__":
    main()
