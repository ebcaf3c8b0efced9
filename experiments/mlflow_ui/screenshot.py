"""Screenshots of the real MLflow UI over a store written by ``train.py``, for the README.

Starts ``mlflow server`` on a free local port over the store, drives headless Chromium with
Playwright (not a project dependency; uv adds it for the one command) and saves

- ``runs.png``: the experiment's training view, sweeps expanded, with a column per
  ``test/<domain>/f1``;
- ``run.png``: the newest training run's page (description, tags, datasets, logged model);
- ``model.png``: that run's logged model, with its linked test metrics;
- with ``--shots explain`` instead: ``explain.png``, the newest run explained by
  ``explain.py``, at one of its explanation's files (``--artifact``).

    uv run --with playwright python experiments/mlflow_ui/screenshot.py \
        --store mlruns --out experiments/mlflow_ui
    uv run --with playwright python experiments/mlflow_ui/screenshot.py \
        --store mlruns --shots explain --artifact explain/palu/gradcam.png

Chromium comes from the system (``--chromium``, default ``/usr/bin/chromium``).
"""

import argparse
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from playwright.sync_api import Page, sync_playwright

VIEWPORT = {"width": 1600, "height": 900}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(store: Path, port: int) -> subprocess.Popen[bytes]:
    """``mlflow server`` over ``store``/mlflow.db, answering on ``port``."""
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
         f"sqlite:///{store.resolve()}/mlflow.db", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=2).ok:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.5)
    server.terminate()
    raise SystemExit(f"mlflow server over {store} did not answer within 120 s")


def close_assistant(page: Page) -> None:
    """Close MLflow's assistant side panel, if it opened."""
    panel = page.get_by_text("MLflow Assistant")
    if panel.count():
        header = panel.first.locator("xpath=ancestor::div[.//button][1]")
        header.locator("button").last.click()


def expand_sweeps(page: Page) -> None:
    """Expand each sweep's row (a parent run), so that its jobs' runs show beneath it."""
    rows = page.locator("[role=row]", has_text="sweep-")
    for i in range(rows.count()):
        cell = rows.nth(i).locator('[col-id="attributes.`Run Name`"]')
        cell.locator("button").first.click()


def search_runs(api: str, experiment_id: str, filter_string: str) -> list[dict]:
    """The experiment's runs matching ``filter_string``, newest first (REST API)."""
    return (
        requests.post(
            f"{api}/runs/search",
            json={
                "experiment_ids": [experiment_id],
                "filter": filter_string,
                "order_by": ["attributes.start_time DESC"],
            },
        )
        .json()
        .get("runs", [])
    )


def training_shots(page: Page, base: str, api: str, experiment_id: str, out: Path) -> None:
    """``runs.png``, ``run.png`` and ``model.png`` of the newest complete training run."""
    runs = search_runs(api, experiment_id, "tags.`landslide.complete` = 'true'")
    newest = runs[0]
    f1_columns = sorted(m["key"] for m in newest["data"]["metrics"] if m["key"].endswith("/f1"))
    model_id = newest["outputs"]["model_outputs"][0]["model_id"]

    page.goto(f"{base}/#/experiments/{experiment_id}/runs", wait_until="load")
    columns = page.get_by_role("button", name="Columns", exact=True)
    columns.wait_for(timeout=120_000)
    page.wait_for_selector('[col-id="attributes.`Run Name`"] a', timeout=60_000)
    page.wait_for_timeout(1500)
    close_assistant(page)
    expand_sweeps(page)
    page.wait_for_selector(f"text={newest['info']['run_name']}", timeout=60_000)
    columns.click()
    for column in f1_columns:
        page.get_by_text(column, exact=True).first.click()
    page.keyboard.press("Escape")
    page.wait_for_timeout(1500)
    page.screenshot(path=str(out / "runs.png"))

    run_id = newest["info"]["run_id"]
    page.goto(f"{base}/#/experiments/{experiment_id}/runs/{run_id}", wait_until="load")
    page.wait_for_selector("text=trained on mix", timeout=60_000)
    page.wait_for_timeout(1500)
    page.screenshot(path=str(out / "run.png"), full_page=True)

    page.goto(f"{base}/#/experiments/{experiment_id}/models/{model_id}", wait_until="load")
    page.wait_for_selector("text=test/palu/f1", timeout=60_000)
    page.wait_for_timeout(1500)
    page.screenshot(path=str(out / "model.png"), full_page=True)


def explain_shot(
    page: Page, base: str, api: str, experiment_id: str, out: Path, artifact: str
) -> None:
    """``explain.png``: the newest explained run's Artifacts tab, at ``artifact``."""
    runs = search_runs(api, experiment_id, "tags.`landslide.explained` != ''")
    if not runs:
        raise SystemExit("no run explained by explain.py in this experiment")
    run_id = runs[0]["info"]["run_id"]
    url = f"{base}/#/experiments/{experiment_id}/runs/{run_id}/artifacts/{artifact}"
    page.goto(url, wait_until="load")
    page.wait_for_selector(f"text={Path(artifact).name}", timeout=60_000)
    page.wait_for_timeout(3000)
    close_assistant(page)
    page.screenshot(path=str(out / "explain.png"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=Path("mlruns"))
    parser.add_argument("--out", type=Path, default=Path("experiments/mlflow_ui"))
    parser.add_argument("--experiment", default="landslide")
    parser.add_argument("--shots", choices=["training", "explain"], default="training")
    parser.add_argument("--artifact", default="explain/palu/gradcam.png")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api = f"{base}/api/2.0/mlflow"
    server = start_server(args.store, port)
    try:
        experiment = requests.get(
            f"{api}/experiments/get-by-name", params={"experiment_name": args.experiment}
        ).json()["experiment"]
        args.out.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=args.chromium, args=["--no-sandbox"]
            )
            page = browser.new_page(viewport=VIEWPORT)
            if args.shots == "training":
                training_shots(page, base, api, experiment["experiment_id"], args.out)
            else:
                explain_shot(page, base, api, experiment["experiment_id"], args.out, args.artifact)
            browser.close()
    finally:
        server.terminate()
        server.wait(30)
    print(f"saved the {args.shots} screenshots in {args.out}")


if __name__ == "__main__":
    main()
