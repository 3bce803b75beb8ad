"""Makes docs/screenshot.png: the page after a real decision by the default judge.

Starts `pluralign serve` with its defaults (Qwen2.5-Coder-1.5B through llama.cpp) on a free
port, opens the page in headless Chromium, chooses for the demo's question and target, and
saves the screenshot once the decision, its explanation and the chart are shown.

    python tools/screenshot.py [--out docs/screenshot.png]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    args = parser.parse_args()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pluralign", "serve", "--port", str(port), "--profiles", str(ROOT / "examples")]
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                httpx.get(f"{url}/healthz", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(1)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
            )
            page = browser.new_page(viewport={"width": 1280, "height": 1050})
            page.goto(url)
            page.wait_for_selector("#val-care")
            page.click("#choose")
            page.wait_for_selector("#chosen", timeout=600_000)
            page.wait_for_timeout(500)
            page.screenshot(path=str(args.out), full_page=True)
            print(page.inner_text("#result")[:600])
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
