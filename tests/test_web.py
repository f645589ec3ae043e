"""The web page in real headless Chromium (Debian's chromium + chromedriver, driven by Selenium):
upload a file and see the label and bars, a long file and see the timeline, record from and
stream Chromium's fake microphone (fed from a WAV file) and see the live updates. Screenshots
go to test-artifacts/ (ignored by git). Skipped when Chromium or Selenium is missing."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest

from emovox.testing import write_wav
from server_support import ARTIFACTS, SR, running_server, scripted_recording, silence, styled, train_tiny_model

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip("Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)",
                allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1100,1300", "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    model = train_tiny_model(tmp_path_factory.getbasetemp())
    with running_server(model, tmp_path_factory.mktemp("web") / "server.log") as s:
        yield s


@pytest.fixture(scope="module")
def microphone_file(tmp_path_factory):
    """What the fake microphone plays, in a loop: 5 s of angry voice, then 1.5 s of silence."""
    signal = np.concatenate([styled("angry", 5.0, seed=60), silence(1.5)])
    return write_wav(tmp_path_factory.mktemp("mic") / "mic.wav", signal, SR)


def _browser(extra=()):
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never download anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, *extra]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    return driver


@pytest.fixture(scope="module")
def browser():
    driver = _browser()
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def mic_browser(microphone_file):
    driver = _browser(["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                       f"--use-file-for-fake-audio-capture={microphone_file}"])
    yield driver
    driver.quit()


def _open(driver, server):
    driver.get(server.url + "/")
    WebDriverWait(driver, 20).until(lambda d: "tiny-voice-model" in d.find_element(By.ID, "model-info").text)


def _label(driver) -> str:
    return driver.find_element(By.ID, "result-label").get_attribute("data-label") or ""


def _screenshot(driver, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / name))


def _errors(driver) -> list[str]:
    try:
        return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    except Exception:  # not every driver keeps the console log
        return []


def test_upload_a_file_shows_label_and_bars(browser, server, tmp_path):
    clip = write_wav(tmp_path / "angry.wav", styled("angry", 2.5, seed=61), SR)
    _open(browser, server)
    browser.find_element(By.ID, "file").send_keys(str(clip))
    WebDriverWait(browser, 30).until(lambda d: _label(d) == "angry")
    bars = browser.find_elements(By.CSS_SELECTOR, "#bars rect")
    assert sorted(b.get_attribute("data-label") for b in bars) == ["angry", "sad"]
    scores = {b.get_attribute("data-label"): float(b.get_attribute("data-score")) for b in bars}
    assert scores["angry"] > 0.5 and sum(scores.values()) == pytest.approx(1.0, abs=1e-3)
    assert "2.5 s" in browser.find_element(By.ID, "result-duration").text
    assert browser.find_element(By.ID, "timeline-box").get_attribute("hidden")  # short clip: no timeline
    _screenshot(browser, "web-upload.png")
    assert not _errors(browser)


def test_a_long_file_shows_the_timeline(browser, server, tmp_path):
    signal, truth = scripted_recording()
    recording = write_wav(tmp_path / "long.wav", signal, SR)
    _open(browser, server)
    browser.find_element(By.ID, "file").send_keys(str(recording))
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#timeline rect.segment"))
    segments = browser.find_elements(By.CSS_SELECTOR, "#timeline rect.segment")
    assert [s.get_attribute("data-label") for s in segments] == ["sad", "angry", "sad", "sad"]
    assert "speech segments" in browser.find_element(By.ID, "timeline-summary").text
    assert _label(browser) == "sad"
    _screenshot(browser, "web-timeline.png")


def test_a_call_with_parties_shows_a_lane_per_party(browser, server, tmp_path):
    from selenium.webdriver.support.ui import Select

    from test_conversation import stereo_call

    call = write_wav(tmp_path / "call.wav", stereo_call(), SR)
    _open(browser, server)
    Select(browser.find_element(By.ID, "parties")).select_by_value("channels")
    browser.find_element(By.ID, "file").send_keys(str(call))
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#timeline g.lane"))
    lanes = [g.get_attribute("data-party") for g in browser.find_elements(By.CSS_SELECTOR, "#timeline g.lane")]
    assert lanes == ["channel1", "channel2"]
    segments = browser.find_elements(By.CSS_SELECTOR, "#timeline rect.segment")
    by_party = {p: {s.get_attribute("data-label") for s in segments if s.get_attribute("data-party") == p} for p in lanes}
    assert by_party == {"channel1": {"angry"}, "channel2": {"sad"}}
    assert "channel1: mostly angry" in browser.find_element(By.ID, "timeline-summary").text
    _screenshot(browser, "web-parties.png")
    assert not _errors(browser)


def test_an_error_is_shown_not_swallowed(browser, server, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"this is not audio")
    _open(browser, server)
    browser.find_element(By.ID, "file").send_keys(str(bad))
    WebDriverWait(browser, 20).until(lambda d: "cannot decode" in d.find_element(By.ID, "status").text)
    assert "error" in browser.find_element(By.ID, "status").get_attribute("class")
    assert all("415" in e for e in _errors(browser))  # the refused upload, and nothing else


def test_record_from_the_microphone(mic_browser, server):
    _open(mic_browser, server)
    mic_browser.find_element(By.ID, "record").click()
    WebDriverWait(mic_browser, 10).until(lambda d: "Recording" in d.find_element(By.ID, "status").text)
    time.sleep(3.0)
    mic_browser.find_element(By.ID, "record").click()
    WebDriverWait(mic_browser, 30).until(lambda d: _label(d) in ("angry", "sad"))
    duration = float(mic_browser.find_element(By.ID, "result-duration").text.split()[0])
    assert 2.0 < duration < 6.0


def test_live_mode_streams_the_fake_microphone(mic_browser, server):
    _open(mic_browser, server)
    mic_browser.find_element(By.ID, "live-toggle").click()
    count = lambda d: int(d.find_element(By.ID, "live-count").get_attribute("data-count"))  # noqa: E731
    WebDriverWait(mic_browser, 30).until(lambda d: count(d) >= 6)
    WebDriverWait(mic_browser, 30).until(lambda d: d.find_element(By.ID, "live-label").get_attribute("data-label") == "angry")
    WebDriverWait(mic_browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#live-segments li"))
    assert mic_browser.find_elements(By.CSS_SELECTOR, "#live-chart polyline")
    assert "Streaming at" in mic_browser.find_element(By.ID, "live-status").text
    _screenshot(mic_browser, "web-live.png")
    mic_browser.find_element(By.ID, "live-toggle").click()
    WebDriverWait(mic_browser, 10).until(lambda d: "Stopped" in d.find_element(By.ID, "live-status").text)
    assert not _errors(mic_browser)


def test_api_docs_render_offline(browser, server):
    browser.get(server.url + "/docs")
    WebDriverWait(browser, 20).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= 4)
    paths = {e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert {"/v1/predict", "/v1/timeline", "/v1/models", "/health"} <= paths
    _screenshot(browser, "web-docs.png")
    assert not _errors(browser)
