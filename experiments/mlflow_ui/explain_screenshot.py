"""A screenshot of an explained run in the real MLflow UI: its ``explain/`` artifacts.

Starts ``mlflow server`` over the store (as ``screenshot.py`` does), opens the newest run
tagged ``landslide.explained`` in headless Chromium at one of its explanation's files and
saves ``explain.png``:

    uv run --with playwright python experiments/mlflow_ui/explain_screenshot.py \
        --store mlruns --artifact explain/palu/gradcam.png
"""

import argparse
from pathlib import Path

import requests
from playwright.sync_api import sync_playwright
from screenshot import VIEWPORT, close_assistant, free_port, start_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=Path("mlruns"))
    parser.add_argument("--out", type=Path, default=Path("experiments/mlflow_ui"))
    parser.add_argument("--experiment", default="landslide")
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
        experiment_id = experiment["experiment_id"]
        runs = requests.post(
            f"{api}/runs/search",
            json={
                "experiment_ids": [experiment_id],
                "filter": "tags.`landslide.explained` != ''",
                "order_by": ["attributes.start_time DESC"],
            },
        ).json()
        if not runs.get("runs"):
            raise SystemExit(f"no explained run in {args.experiment}: run explain.py first")
        run_id = runs["runs"][0]["info"]["run_id"]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=args.chromium, args=["--no-sandbox"]
            )
            page = browser.new_page(viewport=VIEWPORT)
            url = f"{base}/#/experiments/{experiment_id}/runs/{run_id}/artifacts/{args.artifact}"
            page.goto(url, wait_until="load")
            page.wait_for_selector(f"text={Path(args.artifact).name}", timeout=60_000)
            page.wait_for_timeout(3000)
            close_assistant(page)
            args.out.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out / "explain.png"))
            browser.close()
    finally:
        server.terminate()
        server.wait(30)
    print(f"saved explain.png in {args.out}")


if __name__ == "__main__":
    main()
