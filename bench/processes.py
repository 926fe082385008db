"""What the benches that start `dialtone` as a subprocess share: stopping it as a user does,
and reading its log for problems."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path


def stop(process: subprocess.Popen) -> int | None:
    """Ctrl-C, as a user stops it; its exit code, or None if it had to be killed."""
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
        return None


def log_problems(log: Path, width: int = 500) -> list[str]:
    """Error-level JSON log lines and tracebacks."""
    problems = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("Traceback"):
            problems.append(line)
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "critical"):
            problems.append(line[:width])
    return problems
