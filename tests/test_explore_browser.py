"""The explorer in a real headless browser: Playwright driving Debian's Chromium against a real server.

Skipped unless the Python package ``playwright`` and a Chromium binary are installed (``apt-get install -y chromium``;
``DELTAPROP_CHROMIUM`` may name another binary). Playwright's own browser downloads are not needed.

The tests read the numbers from the page (``data-testid`` attributes) and compare them with the published figures,
and save screenshots to ``docs/images/explorer_*.png`` (``DELTAPROP_SCREENSHOT_DIR`` puts them elsewhere).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the explorer needs the extra [explore] (starlette, uvicorn)")
pytest.importorskip("uvicorn", reason="the explorer needs the extra [explore] (starlette, uvicorn)")
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need the Python package playwright")

CHROMIUM = os.environ.get("DELTAPROP_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
if not CHROMIUM:
    pytest.skip("browser tests need Chromium (apt-get install -y chromium)", allow_module_level=True)

from deltaprop.examples import one_weight_descent  # noqa: E402
from deltaprop.explore.server import ExplorerServer  # noqa: E402

expect = sync_api.expect
ROOT = Path(__file__).resolve().parents[1]
SHOTS = Path(os.environ.get("DELTAPROP_SCREENSHOT_DIR") or ROOT / "docs" / "images")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="module")
def server():
    with ExplorerServer(port=0) as s:
        yield s


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh user-data-dir
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=["--headless", *CHROMIUM_ARGS],
            viewport={"width": 1400, "height": 1000},
            timeout=30_000,
        )
        yield context
        context.close()


@pytest.fixture
def page(browser, server):
    page = browser.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))

    def on_console(message):  # the browser logs each 4xx answer itself; the tests provoke some on purpose
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(f"console: {message.text}")

    def on_request(request):  # everything comes from the server: no CDN, nothing off-site
        if not request.url.startswith(server.url) and not request.url.startswith("data:"):
            problems.append(f"off-site request: {request.url}")

    page.on("console", on_console)
    page.on("request", on_request)
    page.goto(server.url)
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    yield page
    page.close()
    assert not problems, problems


def by(page, testid):
    return page.get_by_test_id(testid)


def value_of(page, key):
    return float(by(page, f"val-{key}").get_attribute("data-value"))


def screenshot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"explorer_{name}.png"), full_page=True)


SCROLL_TO_BACKWARD = "(wrap) => { wrap.scrollTop = wrap.querySelector('tr[data-key=dE_dout_o1]').offsetTop - 56; }"


def test_stepping_through_the_worked_example_shows_the_published_figures(page):
    expect(by(page, "net-caption")).to_contain_text("2-2-2")
    expect(by(page, "loss-value")).to_have_text("0.298371")
    by(page, "step-next").click()  # forward pass, hidden layer
    expect(by(page, "val-out_h1")).to_have_text("0.593269992")
    assert value_of(page, "out_h1") == pytest.approx(0.593269992, abs=5e-10)
    expect(by(page, "val-net_h1")).to_have_text("0.3775")
    expect(page.locator("[data-unit=h1]")).to_have_class(re.compile("lit-forward"))
    expect(by(page, "val-E_total")).to_have_count(0)  # not yet: the error comes after the forward pass
    by(page, "step-next").click()  # forward pass, output layer
    expect(by(page, "val-out_o1")).to_have_text("0.75136507")
    by(page, "step-next").click()  # the error
    expect(by(page, "val-E_total")).to_have_text("0.298371109")
    assert value_of(page, "E_total") == pytest.approx(0.298371109, abs=5e-10)
    expect(page.locator("[data-unit=o1]")).to_have_class(re.compile("lit-error"))
    by(page, "step-next").click()  # backward pass, output layer
    expect(by(page, "val-dE_dw5")).to_have_text("0.0821670406")
    expect(page.locator("[data-unit=o2]")).to_have_class(re.compile("lit-backward"))
    by(page, "step-next").click()  # backward pass, hidden layer
    expect(by(page, "val-dE_dout_h1")).to_have_text("0.0363503064")
    expect(by(page, "step-count")).to_have_text("0")  # the update is not shown yet
    by(page, "step-next").click()  # the update
    expect(by(page, "val-w5_new")).to_have_text("0.35891648")
    assert value_of(page, "w5_new") == pytest.approx(0.35891648, abs=5e-9)
    expect(by(page, "val-w1_new")).to_have_text("0.149780716")
    expect(by(page, "val-E_total_new")).to_have_text("0.291027774")
    expect(by(page, "step-count")).to_have_text("1")
    expect(by(page, "network-svg")).to_contain_text("w5⁺ = 0.35892")
    expect(page.locator("#phases li.current")).to_have_attribute("data-phase", "update")
    page.locator(".formulas-wrap").first.evaluate(SCROLL_TO_BACKWARD)  # the chain rule, for the picture
    screenshot(page, "worked_example")
    by(page, "step-all").click()  # the next step, all at once, from the updated weights
    expect(by(page, "step-count")).to_have_text("2")
    assert value_of(page, "E_total") == pytest.approx(0.291027774, abs=5e-10)


CORNER_PIXELS = """
(canvas) => {
  const d = canvas.dataset;
  const ctx = canvas.getContext("2d");
  const px = (x, y) => {
    const u = ((x - d.xMin) / (d.xMax - d.xMin)) * canvas.width;
    const v = canvas.height - ((y - d.yMin) / (d.yMax - d.yMin)) * canvas.height;
    return Array.from(ctx.getImageData(Math.round(u), Math.round(v), 1, 1).data.slice(0, 3));
  };
  // just outside each XOR point (its marker covers the point itself)
  return [px(-0.2, -0.2), px(-0.2, 1.2), px(1.2, -0.2), px(1.2, 1.2)];
}
"""


def test_xor_trains_until_the_decision_regions_separate(page):
    page.get_by_test_id("pick-custom").check()
    by(page, "dataset").select_option("xor")
    by(page, "hidden").fill("4")
    by(page, "build").click()
    expect(by(page, "net-caption")).to_contain_text("2-4-1")
    expect(by(page, "regions-canvas")).to_be_visible()
    by(page, "run").click()
    expect(by(page, "accuracy")).to_have_attribute("data-value", "1", timeout=20_000)
    by(page, "run").click()  # pause: the last request finishes, then the button says Run again
    expect(by(page, "run")).to_have_text("▶ Run")
    expect(by(page, "train-n")).to_be_enabled()
    steps = int(by(page, "step-count").text_content())
    by(page, "train-steps").fill("150")
    by(page, "train-n").click()  # a little further, for a clearer picture
    expect(by(page, "step-count")).to_have_text(str(steps + 150))
    expect(by(page, "accuracy")).to_have_text("100.0 %")
    blue_red = by(page, "regions-canvas").evaluate(CORNER_PIXELS)
    predicted = [0 if b > r else 1 for r, _, b in blue_red]  # class 0 is drawn blue, class 1 red
    assert predicted == [0, 1, 1, 0], blue_red
    expect(by(page, "regions-legend")).to_contain_text("class 0")
    by(page, "step-all").click()  # and one step of it, number by number
    expect(by(page, "val-E_total_new")).to_be_visible()
    page.locator(".formulas-wrap").first.evaluate("(wrap) => { wrap.scrollTop = 0; }")
    screenshot(page, "xor")


def test_the_one_weight_walks_down_to_the_minimum(page):
    page.get_by_test_id("pick-one-weight").check()
    expect(by(page, "net-caption")).to_contain_text("one weight")
    expect(by(page, "ew-canvas")).to_be_visible()
    by(page, "step-all").click()
    expect(by(page, "val-W_new")).to_have_text("2.5")
    by(page, "train-steps").fill("7")
    by(page, "train-n").click()
    expect(by(page, "step-count")).to_have_text("8")
    expected = one_weight_descent(3.0, 0.3, 8)[-1].W_new
    assert float(by(page, "ew-canvas").get_attribute("data-w")) == pytest.approx(expected, abs=1e-12)
    expect(page.locator("[data-testid=ow-table] tbody tr")).to_have_count(8)
    expect(by(page, "ew-now")).to_contain_text(f"now W = {expected:.9g}")
    by(page, "step-all").click()  # one more step, with its formulas
    expect(by(page, "val-W_new")).to_have_text(f"{one_weight_descent(3.0, 0.3, 9)[-1].W_new:.9g}")
    screenshot(page, "one_weight")


def test_bad_input_gets_a_clear_message_and_big_networks_are_summarised(page, tmp_path):
    page.get_by_test_id("pick-custom").check()
    by(page, "hidden").fill("100")
    by(page, "build").click()
    expect(by(page, "message")).to_contain_text("a hidden layer has 1 to 64 units")
    expect(by(page, "message")).to_have_attribute("data-kind", "error")
    by(page, "dataset").select_option("upload")
    bad = tmp_path / "words.csv"
    bad.write_text("a,b,label\n1,2,0\n3,four,1\n")
    by(page, "csv-file").set_input_files(str(bad))
    expect(by(page, "message")).to_contain_text("'four' is not a number")
    big = tmp_path / "big.csv"
    big.write_bytes(b"a,b\n" + b"1,0\n" * 600_000)
    by(page, "csv-file").set_input_files(str(big))
    expect(by(page, "message")).to_contain_text("the limit is")
    good = tmp_path / "good.csv"
    good.write_text(
        "u,v,class\n"
        + "".join(f"{i % 9},{(i * 7) % 11},{(i % 9) > 4}\n" for i in range(60))
        .replace("True", "1")
        .replace("False", "0")
    )
    by(page, "csv-file").set_input_files(str(good))
    expect(by(page, "upload-info")).to_contain_text("60 rows")
    by(page, "hidden").fill("64, 64, 64")
    by(page, "build").click()
    expect(by(page, "message")).to_contain_text("too many to draw")
    expect(by(page, "net-summary")).to_be_visible()
    expect(page.locator("[data-testid=weight-summary] tr")).to_have_count(5)
    by(page, "step-all").click()
    expect(by(page, "val-E_total_new")).to_be_visible()


def test_moons_train_live(page):
    page.get_by_test_id("pick-custom").check()
    by(page, "dataset").select_option("moons")
    by(page, "hidden").fill("8, 8")
    by(page, "build").click()
    expect(by(page, "net-caption")).to_contain_text("2-8-8-1")
    by(page, "train-steps").fill("400")
    by(page, "train-n").click()
    expect(by(page, "step-count")).to_have_text("400")
    assert float(by(page, "accuracy").get_attribute("data-value")) > 0.95
    by(page, "step-next").click()
    by(page, "step-next").click()
    screenshot(page, "moons")
