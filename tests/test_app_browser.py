"""The explorer end to end in a real headless browser (Debian's chromium driven by Playwright): it
opens the app that `neurocypher app` serves, draws the community graph at a readable size (a
33-layer model's too), opens a community by clicking it, draws a community of every input pixel
white, opens the neuron clicked in a neuron's graph, runs relay-path and the console, saves
screenshots of each page under test-artifacts/, and no request goes anywhere but the app's own
address."""

import shutil
import socket
import subprocess
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import zoo
from helpers import NEUROCYPHER, wait_until
from playwright.sync_api import expect, sync_playwright

from neurocypher.ingest import analyze, write
from neurocypher.queries import connect

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parents[1] / "test-artifacts"
# as on a closed network: no background, component-update or sync traffic of the browser's own
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(app: subprocess.Popen, address: str) -> bool:
    """Whether the app at `address` answers its health check; the test fails once the app has exited."""
    if app.poll() is not None:
        pytest.fail(f"neurocypher app exited: {app.stdout.read()}")
    try:
        with urllib.request.urlopen(f"{address}/_stcore/health", timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def served():
    """`neurocypher app` on a free port; its address."""
    port = free_port()
    app = subprocess.Popen(
        [NEUROCYPHER, "app", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    address = app.stdout.readline().split()[-1]
    assert address == f"http://127.0.0.1:{port}", address
    wait_until(lambda: healthy(app, address), 60, "the app to answer /_stcore/health", every=0.1)
    yield address
    app.terminate()
    app.wait(timeout=30)


@pytest.fixture(scope="module")
def deep(digits):
    """`zoo.deep()` (33 layers) trained briefly on 200 digits, innersight only, stored as `app-deep`."""
    X, y = digits.X[:200], digits.y[:200]
    analysis = analyze(
        zoo.train(zoo.deep(), X, y), X, y, name="app-deep", methods=("innersight",), deletion=False, image_shape=(8, 8)
    )
    with connect() as store:
        write(store, analysis, replace=True)
        yield analysis
        store.drop("app-deep")


CYTOSCAPE = "[...document.querySelectorAll('div')].find(d => d._cyreg && d._cyreg.cy)._cyreg.cy"
MEAN_RED = """img => {
    const canvas = document.createElement('canvas');
    [canvas.width, canvas.height] = [img.naturalWidth, img.naturalHeight];
    const context = canvas.getContext('2d');
    context.drawImage(img, 0, 0);
    const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
    let sum = 0;
    for (let i = 0; i < pixels.length; i += 4) sum += pixels[i];
    return sum / (pixels.length / 4);
}"""


def graph_frame(page, index: int = 0):
    """The frame of graph component `index` once its canvas is drawn and fitted."""
    frame = page.frame_locator('iframe[title*="st_link_analysis"]').nth(index)
    expect(frame.locator("canvas").first).to_be_visible(timeout=60_000)
    page.wait_for_timeout(1500)  # the preset layout's fit animation
    return next(f for f in page.frames if "st_link_analysis" in f.url and f.evaluate(f"!!({CYTOSCAPE})"))


def shot(page, name: str) -> None:
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def click_node(page, frame, uid: str, index: int = 0) -> None:
    """Click the node `uid` of graph component `index` where the browser draws it."""
    at = frame.evaluate(f"({CYTOSCAPE}).getElementById('{uid}').renderedPosition()")
    box = page.locator('iframe[title*="st_link_analysis"]').nth(index).bounding_box()
    page.mouse.click(box["x"] + at["x"], box["y"] + at["y"])


def label_size(frame) -> float:
    """The size (px) at which the graph draws its labels, fitted to its canvas."""
    return frame.evaluate(f"(() => {{ const cy = {CYTOSCAPE}; return cy.zoom() * 14; }})()")


def test_browser_draws_the_graph_and_answers_relay_path_locally(served, stored, deep):
    assert Path(CHROMIUM).exists(), "install Debian's chromium (apt-get install chromium); make test does"
    ARTIFACTS.mkdir(exist_ok=True)
    requested = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1400, "height": 2200})
        context.on("request", lambda request: requested.append(request.url))
        context.on("websocket", lambda websocket: requested.append(websocket.url))
        page = context.new_page()

        page.goto(served)
        expect(page.get_by_text("Compare these models")).to_be_visible(timeout=60_000)
        page.wait_for_timeout(1000)  # the table is drawn on a canvas
        shot(page, "models")

        page.goto(f"{served}/communities?model=q-spec&class=1")
        expect(page.get_by_text("Relay chain for class 1")).to_be_visible(timeout=60_000)
        frame = graph_frame(page)
        assert label_size(frame) >= 11, f"labels drawn at {label_size(frame):.1f} px"
        shot(page, "community-graph")
        uid = "q-spec/innersight/L2/c1"
        click_node(page, frame, uid)
        expect(page.get_by_role("heading", name="L2/c1")).to_be_visible(timeout=60_000)
        shown = unquote(page.url)
        assert f"community={uid}" in shown and "class=1" in shown and "method=innersight" in shown
        page.wait_for_timeout(1000)
        shot(page, "community")

        page.goto(f"{served}/communities?model=q-spec&method=relay&community=q-spec/relay/L0/c0")
        mask = page.locator('[data-testid="stImage"]', has_text="its member pixels").locator("img")
        expect(mask).to_be_visible(timeout=60_000)
        mask.evaluate("img => img.decode()")
        assert mask.evaluate(MEAN_RED) == 255, "a community of every input pixel is all white"

        page.goto(f"{served}/communities?model=app-deep&class=3")
        expect(page.get_by_role("heading", name="L0/c").first).to_be_visible(timeout=60_000)
        frame = graph_frame(page)
        assert frame.evaluate(f"({CYTOSCAPE}).nodes('.header').length") == len(deep.layers) == 33
        assert label_size(frame) >= 11, f"33 layers' labels drawn at {label_size(frame):.1f} px"
        shot(page, "deep-graph")

        page.goto(f"{served}/neuron?model=q-spec&uid=q-spec/L1/7")
        expect(page.get_by_text("Strongest flows in")).to_be_visible(timeout=60_000)
        frame = graph_frame(page)
        shot(page, "neuron")
        target = frame.evaluate(f"({CYTOSCAPE}).nodes().map(n => n.id()).find(id => id.includes('/L2/'))")
        click_node(page, frame, target)
        expect(page.get_by_role("heading", name=f"{target.split('/', 1)[1]} in L2")).to_be_visible(timeout=60_000)
        assert f"uid={target}" in unquote(page.url), "the neuron clicked, not L1/0"

        page.goto(f"{served}/questions?model=q-spec&question=relay-path")
        page.get_by_role("button", name="Ask").click()
        expect(page.get_by_text("row(s)")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("relay_bits[$class]").first).to_be_visible()
        graph_frame(page)
        shot(page, "relay-path")

        page.get_by_role("textbox", name="Cypher").fill("MATCH (c:Community {method: 'relay'}) RETURN c LIMIT 6")
        page.get_by_role("button", name="Run").click()
        expect(page.get_by_text("6 row(s)")).to_be_visible(timeout=60_000)
        page.wait_for_timeout(1500)
        shot(page, "console")

        page.goto(f"{served}/compare?models=q-spec,q-spec2")
        expect(page.get_by_text("Matched communities")).to_be_visible(timeout=60_000)
        graph_frame(page, 1)  # both chains drawn
        shot(page, "compare")
        browser.close()
    assert (ARTIFACTS / "community-graph.png").stat().st_size > 10_000
    elsewhere = {
        url
        for url in requested
        if urlsplit(url).scheme not in ("data", "blob", "about") and urlsplit(url).netloc != urlsplit(served).netloc
    }
    assert requested and elsewhere == set()
