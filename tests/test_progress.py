"""The progress bar of long commands: redraws on a terminal, plain lines otherwise."""

import io

from dialtone.cli import progress
from dialtone.cli.progress import ProgressBar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_one_redrawn_line_per_step_with_an_eta(monkeypatch):
    clock = iter([0.0, 1.0, 1.05, 2.0, 3.0, 3.5])
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    out = Terminal()
    bar = ProgressBar(out)
    bar("hashing", 0, 100)  # t=0: drawn
    bar("hashing", 25, 100)  # t=1: 25 rows/s → 3 s left
    bar("hashing", 26, 100)  # t=1.05: too soon, not drawn
    bar("hashing", 100, 100)  # t=2: the end, always drawn
    bar("writing", 10, 10)  # t=3: new step on a new line
    bar.close()
    text = out.getvalue()
    assert text.count("\r") == 4
    assert "25/100 rows" in text and "ETA 0:00:03" in text and "26/100" not in text
    assert "100.0%  100/100 rows" in text and "done in 0:00:02" in text
    assert text.endswith("\n") and text.count("\n") == 2


def test_a_log_gets_a_plain_line_every_few_seconds_and_each_end(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    out = io.StringIO()
    bar = ProgressBar(out, {"checking": "chars"})
    for second in range(12):
        now[0] = float(second)
        bar("checking", second * 10, 200)
    bar("checking", 200, 200)
    bar("checking", 200, 200)  # repeated end: not repeated
    bar.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert [line.split()[3] for line in lines] == ["0/200", "50/200", "100/200", "200/200"]
    assert lines[-1].endswith("done in 0:00:11") and "chars" in lines[-1]
