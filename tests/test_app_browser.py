"""The explorer end to end in a real headless browser (Debian's chromium driven by Playwright): it
opens the app that `neurocypher app` serves, draws the community graph, runs relay-path, saves
screenshots under test-artifacts/, and no request goes anywhere but the app's own address."""

import shutil
import socket
import subprocess
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from helpers import NEUROCYPHER, wait_until
from playwright.sync_api import expect, sync_playwright

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


def test_browser_draws_the_graph_and_answers_relay_path_locally(served, stored):
    assert Path(CHROMIUM).exists(), "install Debian's chromium (apt-get install chromium); make test does"
    ARTIFACTS.mkdir(exist_ok=True)
    requested = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1100})
        context.on("request", lambda request: requested.append(request.url))
        context.on("websocket", lambda websocket: requested.append(websocket.url))
        page = context.new_page()

        page.goto(served)
        expect(page.get_by_text("Compare these models")).to_be_visible(timeout=60_000)
        page.wait_for_timeout(1000)  # the table is drawn on a canvas
        page.screenshot(path=ARTIFACTS / "models.png", full_page=True)

        page.goto(f"{served}/communities?model=q-spec")
        expect(page.get_by_text("Relay chain for class 0")).to_be_visible(timeout=60_000)
        graph = page.frame_locator('iframe[title*="st_link_analysis"]').first
        expect(graph.locator("canvas").first).to_be_visible(timeout=60_000)
        page.wait_for_timeout(1500)  # the preset layout's fit animation
        page.screenshot(path=ARTIFACTS / "community-graph.png", full_page=True)

        page.goto(f"{served}/questions?model=q-spec&question=relay-path")
        page.get_by_role("button", name="Ask").click()
        expect(page.get_by_text("row(s)")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("relay_bits[$class]").first).to_be_visible()
        page.screenshot(path=ARTIFACTS / "relay-path.png", full_page=True)

        page.goto(f"{served}/compare?models=q-spec,q-spec2")
        expect(page.get_by_text("Matched communities")).to_be_visible(timeout=60_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=ARTIFACTS / "compare.png", full_page=True)
        browser.close()
    assert (ARTIFACTS / "community-graph.png").stat().st_size > 10_000
    elsewhere = {
        url
        for url in requested
        if urlsplit(url).scheme not in ("data", "blob", "about") and urlsplit(url).netloc != urlsplit(served).netloc
    }
    assert requested and elsewhere == set()
