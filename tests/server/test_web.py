"""The browser phone's files, served by the API server itself (same origin, no CDN)."""

import io
import wave
from dataclasses import replace

import pytest

from dialtone.server import sounds
from dialtone.server.web import VENDOR


def test_the_page_and_its_config(server):
    page = server.http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'src="vendor/twilio.min.js"' in page.text
    # The page's npm libraries (the Voice SDK, the numbering plans) come from this server.
    for name, path in VENDOR.items():
        assert f'src="{name}"' in page.text
        if path.exists():
            served = server.http.get(f"/{name}")
            assert served.status_code == 200 and served.content == path.read_bytes()
            assert served.headers["content-type"].startswith("application/javascript")
    assert server.http.get("/app.js").headers["content-type"].startswith("application/javascript")
    assert server.http.get("/config.json").json() == {"apiBase": "", "chunderw": None}


def test_config_points_the_phone_at_a_local_emulator(make_server, settings, registry):
    server = make_server(replace(settings, voice_signaling="localhost:3443"))
    assert server.http.get("/config.json").json()["chunderw"] == "localhost:3443"


@pytest.mark.parametrize("name", sounds.NAMES)
def test_sounds_are_local_wav_files(server, name):
    response = server.http.get(f"/sounds/{name}.wav")
    assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(response.content)) as sound:
        assert sound.getnframes() > 0


def test_unknown_sounds_are_404(server):
    assert server.http.get("/sounds/cowbell.wav").status_code == 404
