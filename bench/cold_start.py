"""Cold start of the Lambda handler, side by side with reference imports, in one run.

Each case is a fresh interpreter (`python -c ...`), timed wall-clock, repeated and
interleaved; the report gives medians and ratios to the bare interpreter and to importing
Starlette alone (what any ASGI app pays), so results compare across noisy machines.

Issue 11's P2 goal is measured by two of the cases: the Lambda handler imported and answering
its first signed incoming-call webhook (an API Gateway event, a line registered in SQLite),
against a bare Starlette app returning constant TwiML behind Mangum answering the same event;
`first_webhook_ratio` is the first over the second (goal: <= 2).

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
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from lambda_event import signed_call_incoming_event

from dialtone.devcreds import development_values

GOAL_FIRST_WEBHOOK_RATIO = 2.0
TARGETS = Path(__file__).with_name("targets")

# Each reads the API Gateway event on stdin and must answer with the dial.
DIALTONE_FIRST_WEBHOOK = """
import json, sys
from dialtone.server import aws_lambda
result = aws_lambda.handler(json.loads(sys.stdin.read()), None)
assert "<Client>DeviceId_0001</Client>" in result["body"], result
"""
STARLETTE_FIRST_WEBHOOK = f"""
import json, sys
sys.path.insert(0, {str(TARGETS)!r})
from mangum import Mangum
from starlette_twiml import app
handler = Mangum(app, lifespan="off", api_gateway_base_path="/prod")
result = handler(json.loads(sys.stdin.read()), None)
assert "<Client>DeviceId_0001</Client>" in result["body"], result
"""
FIRST_DIALTONE = "dialtone Lambda handler + first signed webhook"
FIRST_STARLETTE = "starlette + Mangum + first webhook (constant TwiML)"

CASES = {
    "interpreter": "pass",
    "starlette": "import starlette.applications, starlette.routing, starlette.responses",
    "dialtone Lambda handler": "import dialtone.server.aws_lambda",
    "twilio.rest (kept off the webhook path)": "import twilio.rest",
    FIRST_STARLETTE: STARLETTE_FIRST_WEBHOOK,
    FIRST_DIALTONE: DIALTONE_FIRST_WEBHOOK,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument(
        "--out", default=str(Path(__file__).with_name("results") / "cold_start.json")
    )
    args = parser.parse_args()
    from dialtone.server.db import Database
    from dialtone.server.registry import LineRegistry

    scratch = tempfile.TemporaryDirectory(prefix="cold-start-")
    db_url = f"sqlite:///{Path(scratch.name) / 'bench.db'}"
    db = Database(db_url)
    db.upgrade()
    LineRegistry(db, "JP").add("+815031234567", "DeviceId_0001", "bench password")
    db.dispose()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "DIALTONE_"))},
        **development_values(),
        "DIALTONE_DATABASE_URL": db_url,
        "DIALTONE_API_GATEWAY_BASE_PATH": "/prod",  # the public URL comes from the event
    }
    event = signed_call_incoming_event()
    times: dict[str, list[float]] = {name: [] for name in CASES}
    with scratch:
        for _ in range(args.repeat):
            for name, code in CASES.items():  # interleaved: load changes hit every case alike
                started = time.perf_counter()
                subprocess.run(
                    [sys.executable, "-c", code],
                    input=event,
                    text=True,
                    env=env,
                    stderr=subprocess.DEVNULL,  # the handler's JSON log lines
                    check=True,
                )
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
        "first_webhook_ratio": round(medians[FIRST_DIALTONE] / medians[FIRST_STARLETTE], 2),
        "goal_first_webhook_ratio": GOAL_FIRST_WEBHOOK_RATIO,
    }
    report["goal_met"] = report["first_webhook_ratio"] <= GOAL_FIRST_WEBHOOK_RATIO
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    for name, value in medians.items():
        print(f"{name:52s} {value:7.1f} ms  x{report['ratio_to_starlette'][name]:.2f} of starlette")
    verdict = "PASS" if report["goal_met"] else "FAIL"
    print(
        f"{verdict}: first webhook x{report['first_webhook_ratio']} of Starlette's "
        f"(goal <= {GOAL_FIRST_WEBHOOK_RATIO})"
    )


if __name__ == "__main__":
    main()
