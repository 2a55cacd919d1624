"""The HTML report in a real browser: headless Chromium draws the graph and the verdict.

A passing and a denied report of the small ML pipeline (real keys, real verification)
are opened from disk in headless Chromium through Selenium and Debian's chromedriver;
a full-page screenshot is saved, and the pixels checked are read from screenshots of
their region (a small PNG decoder below, stdlib only):
the verdict banner is at the top in the verdict's colour, the stage graph's SVG is laid
out with a non-empty box, and a failed stage's node is painted in the failure colour.
Skipped only when Chromium, its driver or Selenium is absent (CI installs them:
docs/report.md).
"""

from __future__ import annotations

import base64
import os
import shutil
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.formats.htmldoc import STATUS_COLOURS
from mlspec_attest.verify.html_report import report_html

from .mlpipeline import MakeML
from .test_html_report import FAILING_TEST

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if CHROMIUM is None or DRIVER is None:
    if os.environ.get("MLSPEC_ATTEST_REQUIRE_BROWSER"):  # .ci/run installed them: must run
        pytest.fail("chromium and chromedriver are required here but not found", pytrace=False)
    pytest.skip("chromium and chromedriver are not installed", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
Service = pytest.importorskip("selenium.webdriver.chrome.service").Service

Pixel = tuple[int, int, int]


def hex_rgb(colour: str) -> Pixel:
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))


def close(a: Pixel, b: Pixel, tolerance: int = 6) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def png_pixels(data: bytes) -> tuple[int, int, list[list[Pixel]]]:
    """Width, height and RGB rows of an 8-bit, non-interlaced RGB or RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        header = body if kind == b"IHDR" else header
        idat += body if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour_type in (2, 6) and interlace == 0
    channels = 3 if colour_type == 2 else 4
    raw, stride = zlib.decompress(idat), width * channels
    rows: list[bytearray] = []
    for y in range(height):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        prior = rows[-1] if rows else bytearray(stride)
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = prior[i], prior[i - channels] if i >= channels else 0
            line[i] = (line[i] + _predict(kind, left, up, corner)) & 0xFF
        rows.append(line)
    pixels = [[tuple(r[x * channels : x * channels + 3]) for x in range(width)] for r in rows]
    return width, height, pixels  # type: ignore[return-value]


def _predict(kind: int, left: int, up: int, corner: int) -> int:
    if kind == 0:
        return 0
    if kind == 1:
        return left
    if kind == 2:
        return up
    if kind == 3:
        return (left + up) // 2
    p = left + up - corner
    pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
    return left if pa <= pb and pa <= pc else (up if pb <= pc else corner)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--force-device-scale-factor=1", "--window-size=1200,900"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def box(driver: Any, selector: str) -> dict[str, float]:
    found = driver.execute_script(
        "const e = document.querySelector(arguments[0]); if (!e) return null;"
        "const r = e.getBoundingClientRect();"
        "return {x: r.left + window.scrollX, y: r.top + window.scrollY,"
        " width: r.width, height: r.height};",
        selector,
    )
    assert found is not None, f"{selector} is not on the page"
    return dict(found)


def capture(driver: Any, clip: dict[str, float] | None = None) -> bytes:
    """A PNG of the page beyond the window (``clip``: a region in page coordinates)."""
    params: dict[str, Any] = {"format": "png", "captureBeyondViewport": True}
    if clip is not None:
        params["clip"] = {"scale": 1, **clip}
    return base64.b64decode(driver.execute_cdp_cmd("Page.captureScreenshot", params)["data"])


def pixel(driver: Any, x: float, y: float) -> Pixel:
    """The colour painted at (x, y) of the page, read from a screenshot of that pixel."""
    _, _, rows = png_pixels(capture(driver, {"x": int(x), "y": int(y), "width": 1, "height": 1}))
    return rows[0][0]


def open_report(driver: Any, page: str, path: Path) -> tuple[int, int]:
    """Open ``page`` from disk, save a full-page screenshot beside it; its size."""
    path.write_text(page, encoding="utf-8")
    driver.get(path.as_uri())
    assert driver.execute_script("return document.readyState") == "complete"
    shot = capture(driver)
    path.with_suffix(".png").write_bytes(shot)
    assert shot[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", shot[16:24])
    return width, height


def check_layout(driver: Any, verdict: str) -> dict[str, float]:
    banner = box(driver, "#verdict")
    assert banner["y"] == 0 and banner["height"] > 30 and banner["width"] >= 1000
    stroke, _ = STATUS_COLOURS[verdict]
    assert close(pixel(driver, 5, 5), hex_rgb(stroke))  # the banner's own colour
    dag = box(driver, "#stage-dag")
    assert dag["width"] > 200 and dag["height"] > 300
    assert dag["y"] > banner["y"] + banner["height"]
    # the graph is painted: its box holds more than the background colour
    _, _, rows = png_pixels(capture(driver, {**dag, "scale": 0.25}))
    assert len({p for row in rows for p in row}) > 4
    return dag


def node_fill(driver: Any, status: str) -> list[Pixel]:
    """The colour just inside the left edge of every ``status`` node of the stage graph."""
    boxes = driver.execute_script(
        "return [...document.querySelectorAll('#stage-dag g.node')]"
        ".filter(g => g.dataset.status === arguments[0]).map(g => {"
        " const r = g.querySelector('rect').getBoundingClientRect();"
        " return {x: r.left + window.scrollX, y: r.top + window.scrollY, height: r.height}; })",
        status,
    )
    return [pixel(driver, r["x"] + 5, r["y"] + r["height"] / 2) for r in boxes]


def test_a_passing_report_in_chromium(browser: Any, make_ml: MakeML, tmp_path: Path) -> None:
    ml = make_ml().run()
    report = ml.verify()
    page = report_html(report, ml.signed.policy, ml.store)
    width, height = open_report(browser, page, tmp_path / "pass.html")
    assert width >= 1000 and height > 1500
    check_layout(browser, "passed")
    fills = node_fill(browser, "ok")
    assert len(fills) == 6
    assert all(close(f, hex_rgb(STATUS_COLOURS["ok"][1])) for f in fills), fills
    assert node_fill(browser, "failed") == []


def test_a_denied_report_in_chromium(browser: Any, make_ml: MakeML, tmp_path: Path) -> None:
    ml = make_ml().run(test={"metrics": FAILING_TEST})
    report = ml.verify()
    assert not report.passed
    open_report(browser, report_html(report, ml.signed.policy, ml.store), tmp_path / "deny.html")
    dag = check_layout(browser, "failed")
    denials = box(browser, "#denials")
    assert denials["y"] < dag["y"]  # the denials come before the picture
    failed = node_fill(browser, "failed")
    assert len(failed) == 1
    assert close(failed[0], hex_rgb(STATUS_COLOURS["failed"][1])), failed
    assert not close(failed[0], hex_rgb(STATUS_COLOURS["ok"][1]))
