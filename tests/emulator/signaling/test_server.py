"""The signaling endpoint's page (server.py), over real TLS: whoever sees it has accepted the
certificate, so it says so and links back to the phone — only ever to one of the emulator's
own hosts."""

import html
import re
import ssl

import httpx
import pytest

from dialtone.emulator.config import Credentials, EmulatorConfig
from dialtone.emulator.signaling.server import create_signaling_app, local_phone_url
from dialtone.emulator.switch import Switch
from dialtone.emulator.tls import ensure_certificate
from tests.conftest import Serve, _free_port, serving

CONFIGURED = "http://localhost:8000/"


@pytest.fixture
def page(tmp_path):
    switch = Switch(
        EmulatorConfig(credentials=Credentials.from_env({}), allowed_hosts=("phone.lan",))
    )
    cert, key = ensure_certificate(tmp_path, ["localhost"])
    port = _free_port()
    with (
        serving(Serve(create_signaling_app(switch, CONFIGURED), port, ssl=(cert, key))),
        httpx.Client(
            base_url=f"https://localhost:{port}",
            verify=ssl.create_default_context(cafile=str(cert)),
        ) as browser,
    ):

        def back_link(**query: str) -> str | None:
            response = browser.get("/", params=query)
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/html")
            assert "Accepted — back to the phone" in response.text
            assert "default-src 'none'" in response.headers["content-security-policy"]
            found = re.findall(r'<a id="back" href="([^"]*)"', response.text)
            return html.unescape(found[0]) if found else None

        yield back_link


def test_the_page_links_back_to_the_phone_it_was_opened_from(page):
    assert page(phone="http://localhost:9000/?x=1&y=2") == "http://localhost:9000/?x=1&y=2"
    assert page(phone="https://127.0.0.1:8443/") == "https://127.0.0.1:8443/"
    assert page(phone="http://phone.lan:8000/") == "http://phone.lan:8000/"  # --allow-host


@pytest.mark.parametrize(
    "phone",
    [
        "https://evil.example/",
        "javascript:alert(1)",
        "//evil.example/",
        "http://user:pw@localhost:8000/",
        "http://localhost:99999/",
        "http://localhost.evil.example/",
        'http://localhost:8000/"><script>alert(1)</script>',
        "",
    ],
)
def test_any_other_link_falls_back_to_the_configured_phone(page, phone):
    back = page(phone=phone)
    if phone.startswith('http://localhost:8000/"'):
        assert back == phone  # a local URL: kept, and escaped in the page
    else:
        assert back == CONFIGURED


def test_local_phone_url_refuses_what_is_not_a_local_http_url():
    hosts = frozenset({"localhost", "127.0.0.1", "::1"})
    assert local_phone_url("http://[::1]:8000/", hosts) == "http://[::1]:8000/"
    assert local_phone_url("ftp://localhost/", hosts) is None
    assert local_phone_url("http://localhost/" + "a" * 3000, hosts) is None
    assert local_phone_url(None, hosts) is None


def test_without_any_phone_url_the_page_says_what_to_do(tmp_path):
    switch = Switch(EmulatorConfig(credentials=Credentials.from_env({})))
    cert, key = ensure_certificate(tmp_path, ["localhost"])
    port = _free_port()
    with (
        serving(Serve(create_signaling_app(switch), port, ssl=(cert, key))),
        httpx.Client(verify=ssl.create_default_context(cafile=str(cert))) as browser,
    ):
        text = browser.get(
            f"https://localhost:{port}/", params={"phone": "https://x.example/"}
        ).text
    assert "Accepted — back to the phone" in text and "<a " not in text
    assert "Go back to the phone" in text
