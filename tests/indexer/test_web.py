"""The catalog page end to end in Debian's headless Chromium (Selenium + /usr/bin/chromedriver):
search, open a capsule, its lineage graph (SVG drawn by the page's JS) and royalty flow."""

from __future__ import annotations

import shutil
import socket
import threading
import time

import pytest

from codexfield.indexer.api import create_app
from codexfield.indexer.db import make_engine, migrate

from catalog import populate
from synth import capsule_id

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(not (shutil.which(CHROMIUM) and shutil.which(DRIVER)),
                                reason="Debian chromium/chromium-driver missing: run tools/ensure_chromium.sh")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import uvicorn

    tmp = tmp_path_factory.mktemp("web")
    engine = make_engine(tmp / "catalog.db")
    migrate(engine)
    populate(engine, tmp)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(100):
        if srv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(5)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=opts)
    driver.set_window_size(1200, 900)
    yield driver
    driver.quit()


def _wait(predicate, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            value = predicate()
            if value:
                return value
        except Exception:  # noqa: BLE001 - the DOM is still changing
            pass
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the page")


def test_page__search_open_capsule_lineage_and_royalties(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    _wait(lambda: browser.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    assert "lag" in browser.find_element(By.ID, "status").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#results li.result")) == 3

    box = browser.find_element(By.ID, "q")
    box.send_keys("distilled")
    browser.find_element(By.ID, "search-button").click()
    _wait(lambda: [e.get_attribute("data-id") for e in browser.find_elements(By.CSS_SELECTOR, "#results li.result")]
          == [capsule_id(3)])
    assert browser.find_element(By.ID, "result-count").text == "1 capsule"

    browser.find_element(By.CSS_SELECTOR, "#results a.result-link").click()
    _wait(lambda: browser.find_element(By.ID, "capsule-title").text == "Sentiment model distilled")
    nodes = _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#lineage-graph g.lnode"))
    assert {n.get_attribute("data-id") for n in nodes} == {capsule_id(1), capsule_id(2), capsule_id(3)}
    edges = browser.find_elements(By.CSS_SELECTOR, "#lineage-graph line.edge")
    assert {(e.get_attribute("data-child"), e.get_attribute("data-parent")) for e in edges} == {
        (capsule_id(3), capsule_id(2)), (capsule_id(3), capsule_id(1)), (capsule_id(2), capsule_id(1))}
    flows = browser.find_elements(By.CSS_SELECTOR, "#royalty-graph line.flow")
    assert sorted(int(f.get_attribute("data-amount")) for f in flows) == [100, 300, 600, 1000]
    assert "1000" in browser.find_element(By.ID, "royalty-table").text

    # clicking a parent in the graph navigates to it
    browser.find_element(By.CSS_SELECTOR, f'#lineage-graph g.lnode[data-id="{capsule_id(1)}"]').click()
    _wait(lambda: browser.find_element(By.ID, "capsule-title").text == "Reviews corpus")


def test_page__bad_filter_shows_the_api_error(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(server + "/#/")
    _wait(lambda: browser.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    browser.find_element(By.ID, "scope").send_keys("nonsense")
    browser.find_element(By.ID, "search-button").click()
    err = _wait(lambda: browser.find_element(By.ID, "search-error") if browser.find_element(
        By.ID, "search-error").is_displayed() else None)
    assert "unknown scope" in err.text
