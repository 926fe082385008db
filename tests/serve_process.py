"""`dialtone serve` in a process of its own, for tests that measure or multiply the server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dialtone.devcreds import development_values
from tests.conftest import PUBLIC_URL, _free_port, wait_until_up


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident set size so far (VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/PID/status")


@contextmanager
def dialtone_serve(
    workdir: Path, database_url: str, **env: str
) -> Iterator[tuple[subprocess.Popen, str]]:
    """Run `dialtone serve` on a free loopback port with the development credentials;
    yields the process and its base URL. Its log goes to a file in `workdir`."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "DIALTONE_"))}
    environ.update(development_values())
    environ.update(DIALTONE_PUBLIC_URL=PUBLIC_URL, DIALTONE_DATABASE_URL=database_url, **env)
    port = _free_port()
    log = workdir / f"serve-{port}.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "dialtone.cli", "serve", "--port", str(port)],
            env=environ,
            cwd=workdir,  # no developer's .env
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(process, base + "/config.json")
        yield process, base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
