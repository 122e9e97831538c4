"""Render the Fulfillment page from a ledger into a PNG (the README's screenshot, docs/fulfillment-page.png).

    python scripts/ui_screenshot.py --ledger .demo/airflow/fulfillment_ledger.db [--out docs/fulfillment-page.png]

Starts a throwaway `airflow api-server` whose ledger connection is that SQLite file (the one
`make demo` leaves behind), logs in with Debian's Chromium as the browser tests do, opens the
Fulfillment page in the Airflow UI and saves the browser window.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.browser.conftest import (  # noqa: E402  (the repository's own browser harness)
    CHROMIUM_ARGS,
    chromium_path,
    log_in,
    start_airflow_server,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ledger", type=Path, required=True, help="the SQLite ledger file to show")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "fulfillment-page.png")
    parser.add_argument("--vendor", help="show one vendor only")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1600)
    args = parser.parse_args(argv)
    ledger = args.ledger.resolve()
    if not ledger.is_file():
        parser.error(f"no ledger at {ledger}")
    executable = chromium_path()
    if executable is None:
        parser.error("Chromium is not installed (scripts/system-deps.sh installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="fulfillment-screenshot-") as folder:
        connection = json.dumps({"conn_type": "sqlite", "host": str(ledger)})
        server = start_airflow_server(Path(folder) / "home", {"AIRFLOW_CONN_FULFILLMENT_LEDGER": connection})
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=executable, headless=True, args=CHROMIUM_ARGS
                )
                page = browser.new_page(viewport={"width": args.width, "height": args.height})
                log_in(page, server)
                query = f"?vendor={args.vendor}" if args.vendor else ""
                page.goto(server.url(f"/plugin/fulfillment/fulfillment/{query}"))
                frame = page.frame_locator("iframe[title=Fulfillment]")
                frame.get_by_test_id("as-of").wait_for()
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out))
                browser.close()
        finally:
            server.stop()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
