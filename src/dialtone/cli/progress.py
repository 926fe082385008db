"""A progress bar with an ETA for long commands, on stderr; plain lines when not a terminal."""

from __future__ import annotations

import time
from typing import TextIO

BAR_WIDTH = 24
REDRAW_EVERY = 0.1  # seconds, on a terminal
LOG_EVERY = 5.0  # seconds between plain lines (a log file or a pipe)


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ProgressBar:
    """Call with (step, done, total) as often as you like; it draws at a bounded rate, and
    each step's last state once. `units` names what `done` counts per step (default rows)."""

    def __init__(self, stream: TextIO, units: dict[str, str] | None = None) -> None:
        self.stream = stream
        self.units = units or {}
        self.tty = stream.isatty()
        self.step: str | None = None
        self.step_started = 0.0
        self.last_drawn = 0.0
        self.last_line = ""
        self.step_done = False

    def __call__(self, step: str, done: int, total: int) -> None:
        now = time.monotonic()
        if step != self.step:
            self._finish_step()
            self.step, self.step_started, self.last_drawn = step, now, float("-inf")
            self.step_done = False
        finished = total > 0 and done >= total
        every = REDRAW_EVERY if self.tty else LOG_EVERY
        if self.step_done or (not finished and now - self.last_drawn < every):
            return
        self.last_drawn, self.step_done = now, finished
        self.last_line = self._line(step, done, total, now - self.step_started)
        if self.tty:
            self.stream.write("\r\x1b[K" + self.last_line)
        else:
            self.stream.write(self.last_line + "\n")
        self.stream.flush()

    def _line(self, step: str, done: int, total: int, elapsed: float) -> str:
        fraction = min(done / total, 1.0) if total > 0 else 0.0
        filled = int(fraction * BAR_WIDTH)
        unit = self.units.get(step, "rows")
        rate = done / elapsed if elapsed > 0 else 0.0
        if fraction >= 1.0:
            tail = f"done in {_duration(elapsed)}"
        elif rate > 0:
            tail = f"ETA {_duration((total - done) / rate)}"
        else:
            tail = "ETA -:--:--"
        return (
            f"{step:<9} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {fraction:6.1%}"
            f"  {done:,}/{total:,} {unit}  {rate:,.0f}/s  {tail}"
        )

    def _finish_step(self) -> None:
        if self.tty and self.step is not None:
            self.stream.write("\n")
            self.stream.flush()

    def close(self) -> None:
        self._finish_step()
        self.step = None
