"""``emovox report``: one self-contained HTML file with a lane per party, opened offline in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil

import pytest
from typer.testing import CliRunner

from emovox.cli import app
from emovox.testing import write_wav
from server_support import SR, train_tiny_model
from test_conversation import stereo_call

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
# The customer is calm (the tiny model's "sad" style), heated for one turn, calm again; the agent stays calm.
SCRIPT = [(0, "sad", 0.5, 2.5), (1, "sad", 3.5, 3.0), (0, "sad", 7.0, 2.5), (1, "sad", 10.0, 3.0),
          (0, "sad", 13.5, 2.0), (1, "angry", 16.0, 4.0), (0, "sad", 19.8, 2.5), (1, "sad", 23.0, 3.0)]


@pytest.fixture(scope="module")
def report_file(tmp_path_factory):
    model = train_tiny_model(tmp_path_factory.getbasetemp())
    folder = tmp_path_factory.mktemp("report")
    call = write_wav(folder / "call.wav", stereo_call(SCRIPT), SR)
    out = folder / "report.html"
    result = CliRunner().invoke(app, ["report", str(call), "-o", str(out), "--model", str(model),
                                      "--party-names", "agent,customer"])
    assert result.exit_code == 0, result.output
    return out


def test_report_is_one_offline_file_with_a_lane_per_party(report_file):
    html = report_file.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"(src|href)=|@import|url\(|<script", html)  # nothing loaded from anywhere
    assert html.count('class="lane"') == 2 and 'data-party="agent"' in html and 'data-party="customer"' in html
    assert "escalation" in html and "recovery" in html and "(overlap)" in html
    assert 'data-dimension=arousal' in html and 'data-dimension=valence' in html


def test_report_cli_errors(tmp_path):
    result = CliRunner().invoke(app, ["report", str(tmp_path / "call.wav"), "-o", str(tmp_path / "r.pdf")])
    assert result.exit_code == 2 and "use an .html file" in result.output
    result = CliRunner().invoke(app, ["report", str(tmp_path / "call.wav"), "-o", str(tmp_path / "r.html"),
                                      "--parties", "everyone"])
    assert result.exit_code == 2 and "--parties takes" in result.output


class StubTranscriber:
    """Stands in for faster-whisper: each clip's words name it, with HTML in them to escape."""

    def __init__(self, model, **kwargs):
        self.model, self.said = str(model), []

    def transcribe_clips(self, clips, *, language=None):
        from emovox.text.transcribe import Segment, Transcript

        out = []
        for clip in clips:
            text = f"turn {len(self.said)} <script>alert({len(self.said)})</script> & <b>bold</b>"
            self.said.append(text)
            out.append(Transcript(text, "en", 1.0, [Segment(0.0, len(clip) / SR, text)]))
        return out


def test_report_transcribe_shows_each_segments_words_escaped(tmp_path_factory, monkeypatch):
    """--transcribe: a words column with every segment's transcript, HTML in it escaped, never injected."""
    import html as _html

    import emovox.text.transcribe

    made: list[StubTranscriber] = []

    def stub(*args, **kwargs) -> StubTranscriber:
        made.append(StubTranscriber(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(emovox.text.transcribe, "Transcriber", stub)  # what emovox.cli.timeline._text_branch makes
    model = train_tiny_model(tmp_path_factory.getbasetemp())
    folder = tmp_path_factory.mktemp("report-words")
    call = write_wav(folder / "call.wav", stereo_call(SCRIPT), SR)
    out = folder / "report.html"
    result = CliRunner().invoke(app, ["report", str(call), "-o", str(out), "--model", str(model), "--transcribe",
                                      "--asr-model", "whisper-tiny.en"])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    (transcriber,) = made
    assert transcriber.model == "whisper-tiny.en" and len(transcriber.said) >= 8  # a window per turn at least
    assert page.count("<th>words</th>") == 1
    segments = page.split("<th>words</th></tr>", 1)[1].split("</table>", 1)[0]
    assert segments.count("<tr>") == len(transcriber.said)  # a row per segment, each with its own words
    for text in transcriber.said:
        assert f"<td>{_html.escape(text)}</td>" in segments
    assert "<script" not in page and "<b>" not in page and "&lt;script&gt;alert(0)&lt;/script&gt; &amp;" in page


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="Chromium and chromedriver are not installed")
def test_report_opens_offline_in_chromium(report_file, tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.common.by import By

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never download anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--window-size=1100,1400",
                 "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]:  # offline: any fetch would fail
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    try:
        driver.set_page_load_timeout(30)
        driver.get(report_file.as_uri())
        lanes = driver.find_elements(By.CSS_SELECTOR, "g.lane")
        assert [lane.get_attribute("data-party") for lane in lanes] == ["agent", "customer"]
        assert all(lane.size["width"] > 300 for lane in lanes)  # drawn across the call, not empty
        assert len(driver.find_elements(By.CSS_SELECTOR, "svg.curve path.series")) == 4
        assert "escalation" in driver.find_element(By.TAG_NAME, "body").text
        shot = tmp_path / "report.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    finally:
        driver.quit()
