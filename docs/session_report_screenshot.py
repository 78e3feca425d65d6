"""Regenerate docs/img/session-report.png, the README's picture of the session report, from demo data.

Demo-like results (`testing.report_data`: a simulated home session and six earlier weekly walks, each analysed
for real, written through the store at their dates, and an exercise plan) go into a temporary embedded store;
the report of subject demo-001 is rendered exactly as `gaitsym report` renders it, opened in Debian's headless
Chromium (/usr/bin/chromium through Playwright), and the top of the page (this session's readings and the trend)
is saved. Dates are fixed, so a rerun gives the same page.

Run: .venv/bin/python docs/session_report_screenshot.py [--out docs/img/session-report.png] [--html FILE]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analytics.stores.embedded import EmbeddedStore  # noqa: E402
from report.build import write_page  # noqa: E402
from report.gather import gather_report  # noqa: E402
from report.page import render  # noqa: E402
from testing.report_data import demo_like_documents, seed_subject  # noqa: E402

SUBJECT = "demo-001"
SESSION_T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
WIDTH_PX, HEIGHT_PX = 860, 1560


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "docs" / "img" / "session-report.png"))
    parser.add_argument("--html", help="also keep the whole report page here")
    args = parser.parse_args()
    t0_us = int(SESSION_T0.timestamp()) * 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedStore(Path(tmp) / "store.sqlite")
        try:
            seed_subject(store, SUBJECT, current_t0_us=t0_us, documents=demo_like_documents())
            page = render(gather_report(store, SUBJECT, now_us=t0_us + 3600 * 1_000_000))
        finally:
            store.close()
        html = write_page(page, args.html or Path(tmp) / "report.html")
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
            try:
                view = browser.new_page(viewport={"width": WIDTH_PX, "height": HEIGHT_PX})
                view.goto(html.as_uri())
                out = Path(args.out)
                out.parent.mkdir(parents=True, exist_ok=True)
                view.screenshot(path=str(out), clip={"x": 0, "y": 0, "width": WIDTH_PX, "height": HEIGHT_PX})
            finally:
                browser.close()
    print(f"wrote {out}" + (f" and {html}" if args.html else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
