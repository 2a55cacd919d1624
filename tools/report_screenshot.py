"""Make docs/img/report.png: the demo's audit report, rendered by headless Chromium.

    make demo                                   # once: the demo's signed run in examples/
    python tools/report_screenshot.py           # verify --report on it, then the picture
    python tools/report_screenshot.py --html some-report.html --out /tmp/r.png

Needs Chromium and its driver (Debian: ``apt-get install chromium chromium-driver``) and
Selenium (docs/report.md). The picture is the top of the page (banner and stage graph).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "examples" / "pipeline" / "work"
ARTIFACTS = ("model=dist/model", "train-data=data/split/train.csv",
             "holdback-data=data/split/holdback.csv")  # fmt: skip


def demo_report(out: Path) -> Path:
    """``mlspec-attest verify --report`` on the demo's current run."""
    marker = WORK / ".mlspec" / "attestations" / "current-run"
    if not marker.is_file():
        sys.exit(f"no demo run in {WORK}: run `make demo` first")
    args = [sys.executable, "-m", "mlspec_attest.cli.main", "verify",
            "--policy", "policy/lifecycle.signed.json",
            "--policy-key", str(ROOT / "keys-example" / "owner.pub"),
            "--run-id", marker.read_text().strip(), "--report", str(out)]  # fmt: skip
    for artifact in ARTIFACTS:
        args += ["--artifact", artifact]
    proc = subprocess.run(args, cwd=WORK, capture_output=True, text=True, check=False)
    if proc.returncode not in (0, 1):
        sys.exit(f"verify failed (exit {proc.returncode}):\n{proc.stderr}")
    return out


def screenshot(html: Path, png: Path, width: int, height: int) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        sys.exit("chromium and chromedriver are needed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                "--force-device-scale-factor=1", f"--window-size={width},{height}"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    try:
        driver.get(html.resolve().as_uri())
        png.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(png))
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, help="a report to draw (default: the demo's)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "report.png")
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--height", type=int, default=1000)
    ns = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        html = ns.html or demo_report(Path(tmp) / "report.html")
        screenshot(html, ns.out, ns.width, ns.height)
    print(f"{ns.out}")


if __name__ == "__main__":
    main()
