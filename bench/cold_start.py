"""Cold start of the Lambda handler, side by side with reference imports, in one run.

Each case is a fresh interpreter (`python -c ...`), timed wall-clock, repeated and
interleaved; the report gives medians and ratios to the bare interpreter and to importing
Starlette alone (what any ASGI app pays), so results compare across noisy machines.

    .venv/bin/python bench/cold_start.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from dialtone.devcreds import development_values

CASES = {
    "interpreter": "pass",
    "starlette": "import starlette.applications, starlette.routing, starlette.responses",
    "dialtone Lambda handler": "import dialtone.server.aws_lambda",
    "twilio.rest (kept off the webhook path)": "import twilio.rest",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument(
        "--out", default=str(Path(__file__).with_name("results") / "cold_start.json")
    )
    args = parser.parse_args()
    env = {
        **os.environ,
        **development_values(),
        "DIALTONE_PUBLIC_URL": "https://example.com/prod",
        "DIALTONE_DATABASE_URL": "sqlite://",
    }
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(args.repeat):
        for name, code in CASES.items():  # interleaved: load changes hit every case alike
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=env, check=True)
            times[name].append((time.perf_counter() - started) * 1000)
    medians = {name: statistics.median(values) for name, values in times.items()}
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "repeat": args.repeat,
        "median_ms": {k: round(v, 1) for k, v in medians.items()},
        "ratio_to_interpreter": {
            k: round(v / medians["interpreter"], 2) for k, v in medians.items()
        },
        "ratio_to_starlette": {k: round(v / medians["starlette"], 2) for k, v in medians.items()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    for name, value in medians.items():
        print(f"{name:42s} {value:7.1f} ms  x{report['ratio_to_starlette'][name]:.2f} of starlette")


if __name__ == "__main__":
    main()
