"""Media tests need espeak-ng (speech) and a non-loopback IPv4 address (WebRTC). Without them
the tests are skipped with a loud message, except under CI, where they fail."""

from __future__ import annotations

from typing import NoReturn

import pytest

from dialtone.emulator.media import tts
from dialtone.emulator.media.addresses import first_non_loopback_ipv4
from tests.conftest import IN_CI

_skipped: dict[str, list[str]] = {}
_REASONS = {
    "espeak": "espeak-ng is not installed (apt-get install espeak-ng)",
    "address": "this machine has no non-loopback IPv4 address for WebRTC",
}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for kind, tests in _skipped.items():
        terminalreporter.write_sep(
            "!",
            f"MEDIA NOT TESTED: {len(tests)} test(s) skipped because {_REASONS[kind]}",
            red=True,
            bold=True,
        )


def _missing(request: pytest.FixtureRequest, kind: str) -> NoReturn:
    if IN_CI:
        pytest.fail(f"CI=true but {_REASONS[kind]}: media must be tested")
    _skipped.setdefault(kind, []).append(request.node.nodeid)
    pytest.skip(_REASONS[kind])


@pytest.fixture
def espeak(request: pytest.FixtureRequest) -> None:
    if not tts.available():
        _missing(request, "espeak")


@pytest.fixture
def media_address(request: pytest.FixtureRequest) -> str:
    address = first_non_loopback_ipv4()
    if address is None:
        _missing(request, "address")
    return address
