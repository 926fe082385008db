"""Sizes of the Lambda package per variant, and its cold start beside the venv's, in one run.

For each variant (architecture × Lambda Python) that this machine can build, `dialtone aws
package` is run and its zipped and unzipped sizes, file count and largest parts recorded
against Lambda's limits. The variant for this machine's own Python is then unzipped and
timed as Lambda starts it — a fresh `python -I -S` with only the package on sys.path
importing the handler and answering one signed webhook — interleaved with the same in this
venv and with a bare interpreter, so the ratios compare across noisy machines.

    .venv/bin/python bench/lambda_package.py [--repeat 11]
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
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from lambda_event import signed_call_incoming_event

from dialtone.aws.lambda_package import (
    UNZIPPED_LIMIT,
    ZIPPED_LIMIT,
    PackageError,
    build,
    find_interpreter,
)
from dialtone.devcreds import development_values
from dialtone.server.db import Database
from dialtone.server.registry import LineRegistry

HERE = f"{sys.version_info.major}.{sys.version_info.minor}"
VARIANTS = [("x86_64", HERE), ("arm64", HERE), ("arm64", "3.12"), ("x86_64", "3.12")]
FIRST_WEBHOOK = """
import json, sys
if len(sys.argv) > 1:
    sys.path.insert(0, sys.argv[1])
from dialtone.server import aws_lambda
result = aws_lambda.handler(json.loads(sys.stdin.read()), None)
assert "<Client>DeviceId_0001</Client>" in result["body"], result
"""


def _largest(root: Path, count: int = 6) -> dict[str, float]:
    sizes = {
        top.name: sum(p.stat().st_size for p in top.rglob("*") if p.is_file())
        if top.is_dir()
        else top.stat().st_size
        for top in root.iterdir()
    }
    largest = sorted(sizes.items(), key=lambda item: -item[1])[:count]
    return {name: round(size / 2**20, 1) for name, size in largest}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=11)
    parser.add_argument(
        "--out", default=str(Path(__file__).with_name("results") / "lambda_package.json")
    )
    args = parser.parse_args()
    report: dict = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "limits_mb": {"zipped": ZIPPED_LIMIT / 2**20, "unzipped": UNZIPPED_LIMIT / 2**20},
        "variants": {},
    }
    with tempfile.TemporaryDirectory() as scratch:
        here_task = None
        for arch, python in dict.fromkeys(VARIANTS):
            name = f"{arch}/python{python}"
            try:
                find_interpreter(python)
            except PackageError:
                report["variants"][name] = "skipped: no interpreter to compile bytecode"
                continue
            out = Path(scratch) / f"{arch}-{python}.zip"
            started = time.perf_counter()
            try:
                package = build(out, architecture=arch, python=python)
            except PackageError as exc:
                report["variants"][name] = f"not buildable: {str(exc).splitlines()[-1]}"
                print(name, report["variants"][name])
                continue
            seconds = time.perf_counter() - started
            task = Path(scratch) / f"{arch}-{python}"
            with zipfile.ZipFile(out) as archive:
                archive.extractall(task)
            report["variants"][name] = {
                "zipped_mb": round(package.zipped / 2**20, 2),
                "unzipped_mb": round(package.unzipped / 2**20, 2),
                "files": package.files,
                "zipped_of_limit": round(package.zipped / ZIPPED_LIMIT, 3),
                "unzipped_of_limit": round(package.unzipped / UNZIPPED_LIMIT, 3),
                "build_s": round(seconds, 1),
                "largest_mb": _largest(task),
            }
            print(package.summary(), f"built in {seconds:.1f} s")
            if (arch, python) == ("x86_64", HERE) and platform.machine() == "x86_64":
                here_task = task

        if here_task is not None:
            db_url = f"sqlite:///{Path(scratch) / 'bench.db'}"
            db = Database(db_url)
            db.upgrade()
            LineRegistry(db, "JP").add("+815031234567", "DeviceId_0001", "bench password")
            db.dispose()
            env = {
                **development_values(),
                "PATH": os.environ["PATH"],
                "DIALTONE_DATABASE_URL": db_url,
                "DIALTONE_API_GATEWAY_BASE_PATH": "/prod",
            }
            cases = {
                "interpreter": [sys.executable, "-I", "-S", "-c", "pass"],
                "package (python -I -S)": [
                    sys.executable, "-I", "-S", "-c", FIRST_WEBHOOK, str(here_task)
                ],
                "venv": [sys.executable, "-c", FIRST_WEBHOOK],
            }  # fmt: skip
            event = signed_call_incoming_event()
            times: dict[str, list[float]] = {name: [] for name in cases}
            for _ in range(args.repeat):
                for name, command in cases.items():  # interleaved
                    started = time.perf_counter()
                    subprocess.run(
                        command,
                        input=event,
                        text=True,
                        env=env,
                        cwd=scratch,
                        stderr=subprocess.DEVNULL,  # its JSON log lines
                        check=True,
                    )
                    times[name].append((time.perf_counter() - started) * 1000)
            medians = {name: statistics.median(values) for name, values in times.items()}
            report["cold_start_first_webhook"] = {
                "what": "fresh interpreter: import the handler, answer one signed webhook",
                "repeat": args.repeat,
                "median_ms": {k: round(v, 1) for k, v in medians.items()},
                "ratio_to_venv": {k: round(v / medians["venv"], 2) for k, v in medians.items()},
            }
            for name, value in medians.items():
                print(f"cold start + first webhook, {name:24s} {value:7.1f} ms")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
