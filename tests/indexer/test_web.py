"""The catalog page end to end in Debian's headless Chromium (Selenium + /usr/bin/chromedriver):
search, open a capsule, its lineage graph (SVG drawn by the page's JS) and royalty flow; prices in
token units of a real ERC-20 (6 decimals, learnt by the indexer's eth_call), terms as LDL, the
manifest's model/dataset card, and a hostile manifest whose HTML and script stay text."""

from __future__ import annotations

import shutil
import socket
import threading
import time

import pytest

from codexfield.indexer.api import create_app
from codexfield.indexer.db import make_engine, migrate

from catalog import HOSTILE, populate, populate_cards
from synth import CHAIN, capsule_id

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(
    not (shutil.which(CHROMIUM) and shutil.which(DRIVER)),
    reason="Debian chromium/chromium-driver missing: run tools/ensure_chromium.sh",
)


@pytest.fixture(scope="module")
def token(deploy_token):
    return deploy_token("USDC", 6)  # a real ERC-20 on the test chain, not at the token list's address


@pytest.fixture(scope="module")
def server(tmp_path_factory, token, chain):
    import uvicorn

    from codexfield.indexer.ingest import Web3Source
    from codexfield.indexer.tokens import TokenWorker

    tmp = tmp_path_factory.mktemp("web")
    engine = make_engine(tmp / "catalog.db")
    migrate(engine)
    populate(engine, tmp)
    populate_cards(engine, tmp, str(token.address))
    assert TokenWorker(engine, Web3Source(chain.provider.web3), CHAIN).process()["chain"] == 1
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
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
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
    assert len(browser.find_elements(By.CSS_SELECTOR, "#results li.result")) == 5

    box = browser.find_element(By.ID, "q")
    box.send_keys("distilled")
    browser.find_element(By.ID, "search-button").click()
    _wait(
        lambda: (
            [e.get_attribute("data-id") for e in browser.find_elements(By.CSS_SELECTOR, "#results li.result")]
            == [capsule_id(3)]
        )
    )
    assert browser.find_element(By.ID, "result-count").text == "1 capsule"

    browser.find_element(By.CSS_SELECTOR, "#results a.result-link").click()
    _wait(lambda: browser.find_element(By.ID, "capsule-title").text == "Sentiment model distilled")
    nodes = _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#lineage-graph g.lnode"))
    assert {n.get_attribute("data-id") for n in nodes} == {capsule_id(1), capsule_id(2), capsule_id(3)}
    edges = browser.find_elements(By.CSS_SELECTOR, "#lineage-graph line.edge")
    assert {(e.get_attribute("data-child"), e.get_attribute("data-parent")) for e in edges} == {
        (capsule_id(3), capsule_id(2)),
        (capsule_id(3), capsule_id(1)),
        (capsule_id(2), capsule_id(1)),
    }
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
    err = _wait(
        lambda: (
            browser.find_element(By.ID, "search-error")
            if browser.find_element(By.ID, "search-error").is_displayed()
            else None
        )
    )
    assert "unknown scope" in err.text


def _open(browser, server, n):
    from selenium.webdriver.common.by import By

    browser.get(f"{server}/?open={n}#/capsule/{capsule_id(n)}")  # a new query string: a fresh page load
    _wait(lambda: browser.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    return By


def test_page__terms_in_token_units_and_as_ldl__model_card__hostile_manifest_stays_text(server, browser, token):
    By = _open(browser, server, 6)
    title = browser.find_element(By.ID, "capsule-title")
    assert title.text == "Evil " + HOSTILE  # the markup is shown as text
    assert browser.execute_script("return window.__pwned") is None  # and none of its script ran
    view = browser.find_element(By.ID, "capsule-view")
    assert view.find_elements(By.CSS_SELECTOR, "script, img, iframe, object") == []

    terms = browser.find_element(By.CSS_SELECTOR, '#terms li[data-terms-id="10"]')
    assert "terms 10: 0.002 USDC per MU, upfront 10 USDC" in terms.text
    badge = terms.find_element(By.CSS_SELECTOR, ".tag.unlisted")  # symbol from the contract: its address shown
    assert badge.text == f"unlisted token {token.address[:6]}…{token.address[-4:]}"
    ldl = terms.find_element(By.CSS_SELECTOR, "pre.ldl").text
    assert ldl.splitlines()[:3] == [
        "license for capsule 6",
        f"price 2000 units of {token.address} per MU, upfront 10000000 units of {token.address}",
        "meter gpu.second",
    ]
    assert "allow research, derivatives, inference" in ldl and "duration 30 days" in ldl

    card = browser.find_element(By.ID, "card")
    assert card.is_displayed() and browser.find_element(By.ID, "card-title").text == "Model card"
    field = lambda k: card.find_element(By.CSS_SELECTOR, f'dd[data-card="{k}"]')  # noqa: E731
    assert field("task").text == "text-classification" and field("architecture").text == "TinyBERT"
    assert field("parameters").text == "66,000,000" and field("language").text == "en, pt-BR"
    assert field("license").text == "Apache-2.0" and field("x-html").text == HOSTILE
    assert (
        field("base_model")
        .find_element(By.TAG_NAME, "a")
        .get_attribute("href")
        .endswith("#/capsule/" + capsule_id(2).replace(":", "%3A").replace("/", "%2F"))
    )
    links = [a.get_attribute("href") for a in field("training_data").find_elements(By.TAG_NAME, "a")]
    assert "https://example.org/reviews" in links and not any(h.startswith("javascript:") for h in links)
    assert "javascript:window.__pwned=1" in field("training_data").text  # shown, not linked
    sections = {s.get_attribute("data-card"): s.text for s in card.find_elements(By.CSS_SELECTOR, "section")}
    assert sections["intended_use"].startswith("Intended use\nSorting product reviews by mood.")
    assert HOSTILE in sections["intended_use"] and sections["limitations"].endswith("English and Portuguese only.")
    metric = card.find_element(By.CSS_SELECTOR, "#card-metrics tr[data-metric=accuracy]").text
    assert metric == "accuracy 0.913 reviews test"
    chips = {c.get_attribute("data-chip"): c.text for c in browser.find_elements(By.CSS_SELECTOR, "#card-tags li")}
    assert chips["task"] == "task text-classification" and chips["license"] == "license Apache-2.0"
    assert chips["version"] == "version 2.1.0" and chips["files"] == "files 1 (2.0 kB)"
    assert browser.execute_script("return window.__pwned") is None


def test_page__dataset_card_and_search_prices_in_token_units(server, browser):
    By = _open(browser, server, 7)
    _wait(lambda: browser.find_element(By.ID, "capsule-title").text == "Reviews 2024")
    assert browser.find_element(By.ID, "card-title").text == "Dataset card"
    fields = {d.get_attribute("data-card"): d.text for d in browser.find_elements(By.CSS_SELECTOR, "#card-fields dd")}
    assert fields["records"] == "120,000" and fields["size_bytes"] == "48.0 MB" and fields["format"] == "jsonl"
    assert fields["personal_data"] == "no" and fields["license"] == "CC-BY-4.0"
    assert "Public product pages, 2024." in browser.find_element(By.CSS_SELECTOR, 'section[data-card="source"]').text
    assert "0.002 USDC per MU" in browser.find_element(By.ID, "terms").text

    browser.get(server + "/?fresh=1#/")  # reloaded: no query left in the box by an earlier test
    _wait(lambda: browser.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    row = _wait(lambda: browser.find_element(By.CSS_SELECTOR, f'#results li[data-id="{capsule_id(7)}"]'))
    assert "from 0.002 USDC / MU" in row.text
    other = browser.find_element(By.CSS_SELECTOR, f'#results li[data-id="{capsule_id(2)}"]')
    assert "from 5 units of 0xaAaA…aaAa / MU" in other.text  # no code at that address: raw units, never a unit
