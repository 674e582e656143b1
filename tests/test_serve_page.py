"""The monitor's page in a real headless browser (Debian's chromium + chromedriver, through selenium):
tiles for the three cameras, drawn timelines, the anomaly's event listed and acknowledged.

``DAMVAD_SCREENSHOT=docs/serve.png`` also saves the page as a picture (the README's)."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from servetools import generated_file, get, start_server, synth, wait_for

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser")) if p), None)
DRIVER = shutil.which("chromedriver") or (os.path.exists("/usr/bin/chromedriver") and "/usr/bin/chromedriver")


@pytest.fixture()
def browser():
    if not CHROMIUM or not DRIVER:
        pytest.skip("no headless browser: apt-get install chromium chromium-driver (.ci/run does)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (the dev extra) is not installed")
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="damvad-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", "--window-size=1280,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _fresh(browser, css: str, use):
    """``use(element)`` on the first element ``css`` finds now, or None: the page re-renders its tables while an
    event changes (opened, closed, its pictures written), so an element found earlier may be gone."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        found = browser.find_elements(By.CSS_SELECTOR, css)
        return use(found[0]) if found else None
    except StaleElementReferenceException:
        return None


def test_page_shows_tiles_timelines_and_the_event(tmp_path, browser):
    from selenium.webdriver.common.by import By

    video = generated_file(tmp_path / "lobby.mp4", events="")
    server = start_server(tmp_path, [{"name": "plaza", "source": synth(1), "realtime": False},
                                     {"name": "street", "source": synth(2, events=""), "realtime": False},
                                     {"name": "lobby", "source": str(video)}])
    try:
        wait_for(lambda: get(f"{server.url}/api/events")[1], 60, "the event")
        browser.get(server.url + "/")
        tiles = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".tile"), 30, "tiles")
        assert sorted(t.get_attribute("data-camera") for t in tiles) == ["lobby", "plaza", "street"]
        wait_for(lambda: all(int(c.get_attribute("data-points")) >= 7
                             for c in browser.find_elements(By.CSS_SELECTOR, "canvas.timeline")), 60,
                 "every timeline drawn with the streams' 7 clips")
        wait_for(lambda: all(img.get_attribute("naturalWidth") not in (None, "0")
                             for img in browser.find_elements(By.CSS_SELECTOR, ".tile img.thumb")), 30,
                 "every tile's last frame")
        text = wait_for(lambda: _fresh(browser, "#events tr[data-camera=plaza]", lambda row: row.text), 30,
                        "the plaza event on the page")
        assert "0.99" in text or "1.000" in text  # its peak score
        assert not browser.find_elements(By.CSS_SELECTOR, "#events tr[data-camera=street]")
        plaza = browser.find_element(By.CSS_SELECTOR, ".tile[data-camera=plaza] .thr").text
        assert "threshold 0.500" in plaza and "448 frames" in plaza
        if os.environ.get("DAMVAD_SCREENSHOT"):
            browser.execute_script("window.scrollTo(0, 0)")
            browser.save_screenshot(os.environ["DAMVAD_SCREENSHOT"])
        wait_for(lambda: _fresh(browser, "#events tr[data-camera=plaza]",
                                lambda row: row.find_element(By.TAG_NAME, "button").click() or True),
                 30, "the ack button")
        wait_for(lambda: get(f"{server.url}/api/events?camera=plaza")[1][0]["acknowledged_ts"], 30, "the ack")
        wait_for(lambda: "acknowledged" in (_fresh(browser, "#events tr[data-camera=plaza]",
                                                   lambda row: row.get_attribute("class")) or ""),
                 30, "the page to show it")
        logs = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not logs, logs  # no script error, nothing refused by the content security policy
    finally:
        server.stop()
