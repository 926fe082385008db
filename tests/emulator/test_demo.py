"""What the emulator serves for a first call (demo.py): seed 003's demo TwiML, fetched by the
emulator itself as Twilio fetches demo.twilio.com, and the root page leading to the console."""

from urllib.parse import urlsplit

import httpx

from dialtone.emulator import demo
from tests.emulator.conftest import TWILIO_NUMBER


def test_the_demo_twiml_is_what_seed_003s_url_answers(emulator):
    emulator.add_number(TWILIO_NUMBER)
    url = demo.voice_xml_url(emulator.base_url)
    call = emulator.call_out(Url=url)
    final = emulator.wait_status(call["sid"])
    assert final["status"] == "completed"
    assert emulator.events(call["sid"], "error") == []
    (fetched,) = emulator.events(call["sid"], "webhook")
    assert (fetched["url"], fetched["status"], fetched["method"]) == (url, 200, "POST")
    say, play = emulator.events(call["sid"], "audio")
    assert (say["source"], say["voice"], say["text"]) == ("say", "alice", demo.GREETING)
    assert play["source"] == "play" and urlsplit(play["url"]).path == demo.CHIME
    assert play["seconds"] > 0.8  # the chime, decoded


def test_the_demo_document_and_chime_answer_get_as_well(emulator):
    with httpx.Client(base_url=emulator.base_url) as anyone:  # no credentials: a public page
        document = anyone.get(demo.VOICE_XML)
        assert document.status_code == 200
        assert document.headers["content-type"].startswith("application/xml")
        assert f'<Say voice="alice">{demo.GREETING}</Say>' in document.text
        chime = anyone.get(demo.CHIME)
        assert chime.status_code == 200 and chime.content.startswith(b"RIFF")


def test_the_root_leads_to_the_console_with_the_key_flow_intact(emulator):
    key = emulator.switch.config.console_key
    with httpx.Client(base_url=emulator.base_url) as browser:
        root = browser.get("/")
        assert root.status_code == 303 and root.headers["location"] == "/console"
        # The banner's `?key=` still works from the root: a cookie, then the console itself.
        opened = browser.get(f"/?key={key}", follow_redirects=True)
        assert opened.status_code == 200 and opened.url.path == "/console"
        assert "<html" in opened.text.lower()


def test_the_console_without_a_key_asks_a_browser_for_it(emulator):
    with httpx.Client(base_url=emulator.base_url) as browser:
        page = browser.get("/", headers={"Accept": "text/html"}, follow_redirects=True)
        assert page.status_code == 401 and page.url.path == "/console"
        assert page.headers["content-type"].startswith("text/html")
        assert 'action="/console"' in page.text and 'name="key"' in page.text
        assert emulator.switch.config.console_key not in page.text
        # A client that is not a browser still gets Twilio's JSON.
        assert browser.get("/console").json()["code"] == 20003
        # The form's own request opens the console.
        key = emulator.switch.config.console_key
        opened = browser.get("/console", params={"key": key}, follow_redirects=True)
        assert opened.status_code == 200 and opened.url.path == "/console"
