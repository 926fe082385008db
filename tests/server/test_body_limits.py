"""Request bodies are read up to each route's limit and refused (413) past it, never buffered
whole: over real HTTP, and in a `dialtone serve` process whose peak memory is measured."""

import json
import socket
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from dialtone.server import token_api, webhooks
from dialtone.server.db import Database
from dialtone.server.registry import LineRegistry
from tests.conftest import SEED_CLIENT, SEED_NUMBER, SEED_PASSWORD
from tests.serve_process import dialtone_serve, peak_rss_kib

TOKEN = "/twilio/retrieve_capability_token"
REFRESH = "/twilio/refresh_token"
INCOMING = "/twilio/retrieve_twiml/call_incoming"
STATUS = "/twilio/status_callback"
DIAL_ENDED = "/twilio/retrieve_twiml/dial_ended"
JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}
ROUTES = [
    (TOKEN, JSON, token_api.MAX_BODY),
    (REFRESH, JSON, token_api.MAX_BODY),
    (INCOMING, FORM, webhooks.MAX_BODY),
    (STATUS, FORM, webhooks.MAX_BODY),
    (DIAL_ENDED, FORM, webhooks.MAX_BODY),
]


def _stream(total, chunk=64 * 1024):
    """`total` bytes of JSON-ish whitespace, generated (chunked: no Content-Length)."""
    block = b" " * chunk
    for start in range(0, total, chunk):
        yield block[: min(chunk, total - start)]


def _raw_request(base_url, path, headers, body=b""):
    """Send a request head (and `body`) over a plain socket and return the status line: the
    server answers before the announced body arrives."""
    url = urlsplit(base_url)
    head = f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()
    )
    with socket.create_connection((url.hostname, url.port), timeout=10) as connection:
        connection.sendall(head.encode() + b"\r\n" + body)
        answer = b""
        while b"\r\n" not in answer:
            data = connection.recv(4096)
            if not data:
                break
            answer += data
    return answer.split(b"\r\n", 1)[0].decode()


@pytest.mark.parametrize(("path", "headers", "limit"), ROUTES)
def test_a_body_announced_past_the_route_limit_is_refused(server, path, headers, limit):
    response = server.http.post(path, content=b" " * (limit + 1), headers=headers)
    assert response.status_code == 413


@pytest.mark.parametrize(("path", "headers", "limit"), [r for r in ROUTES if r[0] != REFRESH])
def test_a_body_streamed_past_the_route_limit_is_refused(server, path, headers, limit):
    # (The refresh route reads no body: one streamed to it is discarded unread.)
    streamed = server.http.post(path, content=_stream(limit + 1, 1000), headers=headers)
    assert streamed.status_code == 413
    assert streamed.json() == {
        "success": False,
        "error": f"the request body is too large (at most {limit} bytes)",
    }


def test_a_sign_in_at_the_limit_is_read(server):
    body = json.dumps({"twilioPhoneNumber": SEED_NUMBER, "password": SEED_PASSWORD})
    padded = body.ljust(token_api.MAX_BODY).encode()  # JSON allows the trailing whitespace
    response = server.http.post(TOKEN, content=padded, headers=JSON)
    assert response.status_code == 200
    assert response.json()["identity"] == SEED_CLIENT


def test_a_webhook_at_the_limit_is_read(server):
    params = {
        "CallSid": "CA" + "1a" * 16,
        "From": "+819059876543",
        "To": SEED_NUMBER,
        "Padding": "",
    }
    params["Padding"] = "x" * (webhooks.MAX_BODY - len(urlencode(params)))
    assert len(urlencode(params)) == webhooks.MAX_BODY
    response = server.webhook(INCOMING, params)
    assert response.status_code == 200
    assert f"<Client>{SEED_CLIENT}</Client>" in response.text


@pytest.mark.parametrize(("path", "headers", "limit"), ROUTES)
def test_a_huge_content_length_is_refused_before_the_body_is_sent(server, path, headers, limit):
    status = _raw_request(server.base_url, path, {**headers, "Content-Length": str(10**12)})
    assert status.startswith("HTTP/1.1 413"), status


def test_routes_without_a_body_refuse_a_large_one(server):
    response = server.http.request("GET", "/config.json", content=b" " * (64 * 1024))
    assert response.status_code == 413


def test_a_200_mb_body_leaves_the_servers_peak_memory_flat(tmp_path):
    url = f"sqlite:///{tmp_path / 'dialtone.db'}"
    db = Database(url)
    db.upgrade()
    LineRegistry(db).add(SEED_NUMBER, SEED_CLIENT, SEED_PASSWORD)
    db.dispose()
    size = 200 * 1024 * 1024
    with (
        dialtone_serve(tmp_path, url) as (process, base),
        httpx.Client(base_url=base, timeout=120) as http,
    ):
        # Warm up every code path first, so only the large bodies can move the peak.
        for path, headers, limit in ROUTES:
            http.post(path, content=b"{}", headers=headers)
            if path != REFRESH:  # (reads no body)
                answer = http.post(path, content=_stream(limit + 1), headers=headers)
                assert answer.status_code == 413
        assert http.post(
            TOKEN, json={"twilioPhoneNumber": SEED_NUMBER, "password": SEED_PASSWORD}
        ).is_success
        before = peak_rss_kib(process.pid)

        for path, headers, _limit in ROUTES[::2]:  # a token route and a webhook
            # Chunked: no length announced, the server must count what it reads.
            assert http.post(path, content=_stream(size), headers=headers).status_code == 413
            # Announced: refused on the head alone, nothing of the body is sent.
            status = _raw_request(base, path, {**headers, "Content-Length": str(size)})
            assert status.startswith("HTTP/1.1 413"), status

        grown = peak_rss_kib(process.pid) - before
        print(f"peak RSS {before} KiB before, grew by {grown} KiB")
        assert grown < 10 * 1024, f"peak RSS grew by {grown} KiB for 200 MB bodies"
