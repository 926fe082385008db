"""Signed incoming-call webhooks per second: dialtone beside the stack's floor and the quickstart.

    .venv/bin/python bench/webhook_throughput.py             # 10 s per target and load
    .venv/bin/python bench/webhook_throughput.py --quick     # 3 s each
    .venv/bin/python bench/webhook_throughput.py --million   # also with 1,000,000 lines
    .venv/bin/python bench/webhook_throughput.py --postgres URL  # also on PostgreSQL (or set
                                                                # DIALTONE_TEST_POSTGRES_URL)
    .venv/bin/python bench/webhook_throughput.py --rounds 3  # every target 3 times, interleaved

A local PostgreSQL cluster is pinned to wrk's CPU (the database is another machine in
production; here its backends would otherwise take turns with the server on its core).

Targets, each started in turn and pinned to CPU 0 while `wrk` (Debian's package) runs pinned to
CPU 1, at 1, 16 and 64 connections:

- `dialtone serve` as a user runs it (the venv's CLI, configured by environment variables),
  SQLite in a temporary file (and PostgreSQL in a fresh schema when given), one line registered
  (and, with --million, 999,999 more filler lines inserted by SQL, sharing one Argon2id hash);
  POST /twilio/retrieve_twiml/call_incoming with a valid X-Twilio-Signature, distinct CallSids,
  so each request records its call in the history as in production;
- a bare Starlette app returning constant TwiML on the same uvicorn (bench/targets);
- Twilio's Flask quickstart shape (RequestValidator + VoiceResponse) on Flask's own server and
  on gunicorn with one sync worker (bench/requirements.txt).

The bodies are signed beforehand (the signature is fixed for a fixed URL and body) and replayed
by bench/wrk/signed_webhooks.lua, whose done() hook reports percentiles, the maximum and the
requests over 1 s. With --rounds N every target is measured N times, interleaved, and the
medians reported (a noisy minute on a shared machine then touches every target alike).
Results, ratios and each goal of issue 11 (P1) pass/fail: bench/results/webhook_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from postgres_schemas import drop_schema, postgres_schema
from twilio.request_validator import RequestValidator

from dialtone.devcreds import development_values

BENCH = Path(__file__).parent
TARGETS = BENCH / "targets"
LUA = BENCH / "wrk" / "signed_webhooks.lua"
BIN = Path(sys.executable).parent
PATH = "/twilio/retrieve_twiml/call_incoming"
LINE_NUMBER = "+815031234567"
LINE_CLIENT = "DeviceId_0001"
CALLER = "+819059876543"
CONNECTIONS = (1, 16, 64)
DISTINCT_REQUESTS = 20_000
FILLER_FIRST = 20_000_000  # +8150 2000 0000 onwards: valid JP numbers, none the line's

# Issue 11, P1.
GOAL_VS_STARLETTE = 0.3
GOAL_VS_GUNICORN = 1.5
GOAL_VS_FLASK = 2.0
GOAL_P99_MS_AT_64 = 25.0
GOAL_SAME_WITH_A_MILLION = 0.10


@dataclass
class Target:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    expect: str = "<Client>"  # what a correct answer holds


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def sign_requests(url: str, auth_token: str, path: Path, count: int) -> None:
    """`count` signed bodies of an incoming call to the line, as Twilio would send them."""
    validator = RequestValidator(auth_token)
    run = uuid.uuid4().hex[:8]
    with path.open("w") as out:
        for i in range(count):
            params = {
                "AccountSid": development_values()["TWILIO_ACCOUNT_SID"],
                "ApiVersion": "2010-04-01",
                "CallSid": f"CA{run}{i:024x}",
                "CallStatus": "ringing",
                "Called": LINE_NUMBER,
                "CalledCountry": "JP",
                "Caller": CALLER,
                "CallerCountry": "JP",
                "Direction": "inbound",
                "From": CALLER,
                "FromCountry": "JP",
                "To": LINE_NUMBER,
                "ToCountry": "JP",
            }
            signature = validator.compute_signature(url, params)
            out.write(f"{signature}\t{urlencode(params)}\n")


def prepare_database(url: str, env: dict[str, str], filler: int) -> float:
    """Schema, the one line (through the CLI), then `filler` lines by SQL; seconds taken."""
    started = time.perf_counter()
    subprocess.run(
        [str(BIN / "dialtone"), "lines", "add", LINE_NUMBER, LINE_CLIENT, "--password-stdin"],
        input="bench password 1\n",
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    if filler:
        insert_filler(url, filler)
    return time.perf_counter() - started


def insert_filler(url: str, count: int) -> None:
    """Registered lines nobody calls: direct inserts, one Argon2id hash shared by all."""
    from argon2 import PasswordHasher
    from sqlalchemy import create_engine

    shared = PasswordHasher().hash("filler password")
    now = datetime.now(UTC)
    engine = create_engine(url)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        rows = ((f"+8150{FILLER_FIRST + i:08d}", f"filler_{i:07d}", shared) for i in range(count))
        if url.startswith("sqlite"):
            stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")  # as SQLAlchemy stores DateTime
            cursor.executemany(
                "INSERT INTO lines (phone_number, client_name, password_hash, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?)",
                ((*row, stamp, stamp) for row in rows),
            )
        else:
            with cursor.copy(
                "COPY lines (phone_number, client_name, password_hash, created_at, updated_at)"
                " FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row((*row, now, now))
            cursor.execute("ANALYZE lines")
        raw.commit()
    finally:
        raw.close()
        engine.dispose()


@contextmanager
def running(target: Target, port: int, server_cpu: int | None, log: Path) -> Iterator[None]:
    """The target's server, pinned, until it answers; stopped (SIGTERM, then SIGKILL) after.
    Its output goes to `log` (some log one line per request)."""

    def pin() -> None:
        os.setsid()  # its own process group: gunicorn's worker is stopped with it
        if server_cpu is not None:
            os.sched_setaffinity(0, {server_cpu})

    with log.open("wb") as output:
        process = subprocess.Popen(
            target.argv,
            env={**os.environ, **target.env},
            cwd=target.cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=pin,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"{target.name} did not start: {tail}") from None
                time.sleep(0.1)
        yield
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass


def check_answer(url: str, requests_file: Path, expect: str) -> None:
    """One request by hand: the target must answer 200 with the dial, not a refusal."""
    signature, body = requests_file.read_text().splitlines()[0].split("\t", 1)
    request = urllib.request.Request(
        url,
        data=body.encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    if response.status != 200 or expect not in text:
        raise RuntimeError(f"{url} answered {response.status}: {text[:300]}")


def run_wrk(
    url: str, requests_file: Path, connections: int, seconds: float, cpu: int | None
) -> dict:
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",  # whole seconds only
        "--latency",
        "--timeout",
        "5s",
        "-s",
        str(LUA),
        url,
        "--",
        str(requests_file),
    ]
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu), *argv]
    output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    stats = next(
        json.loads(line.removeprefix("WRK_JSON "))
        for line in output.splitlines()
        if line.startswith("WRK_JSON ")
    )
    seconds_run = stats["duration_us"] / 1e6
    return {
        "requests_per_s": round(stats["requests"] / seconds_run, 1),
        "requests": stats["requests"],
        "p50_ms": round(stats["p50_us"] / 1000, 2),
        "p90_ms": round(stats["p90_us"] / 1000, 2),
        "p99_ms": round(stats["p99_us"] / 1000, 2),
        "p999_ms": round(stats["p999_us"] / 1000, 2),
        "max_ms": round(stats["max_us"] / 1000, 2),
        "over_1s": stats["over_1s"],
        "non_2xx": stats["status"],  # wrk counts statuses > 399
        "socket_errors": {k: stats[k] for k in ("connect", "read", "write", "timeout")},
    }


def measure(
    target: Target, scratch: Path, seconds: float, warmup: float, cpus: tuple[int, int] | None
) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}{PATH}"
    target.env["DIALTONE_PUBLIC_URL"] = f"http://127.0.0.1:{port}"  # a new port each run
    slug = "".join(ch if ch.isalnum() else "-" for ch in target.name)
    requests_file = scratch / f"{slug}.requests"
    sign_requests(url, development_values()["TWILIO_AUTH_TOKEN"], requests_file, DISTINCT_REQUESTS)
    argv = [part.replace("{port}", str(port)) for part in target.argv]
    server_cpu, load_cpu = cpus if cpus else (None, None)
    results = {}
    log = scratch / f"{slug}.log"
    with running(Target(target.name, argv, target.env, target.cwd), port, server_cpu, log):
        check_answer(url, requests_file, target.expect)
        for connections in CONNECTIONS:
            if warmup:
                run_wrk(url, requests_file, connections, warmup, load_cpu)
            results[str(connections)] = run_wrk(url, requests_file, connections, seconds, load_cpu)
            r = results[str(connections)]
            print(
                f"  {target.name:34s} c={connections:<3d} {r['requests_per_s']:9,.0f} req/s"
                f"  p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:8.2f} ms  max {r['max_ms']:8.1f}"
                f" ms  non-2xx {r['non_2xx']}  errors {sum(r['socket_errors'].values())}",
                flush=True,
            )
    return results


def pin_postgres(url: str, cpu: int) -> bool:
    """Pin a local PostgreSQL cluster (its postmaster and every process it has forked; those
    it forks later inherit the pinning) to `cpu`, the load generator's: in production the
    database is another machine, and here its backends would otherwise take turns with the
    server on the server's core. False when the cluster is not on this machine."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as connection:
        pid = connection.execute("SELECT pg_backend_pid()").fetchone()[0]
    try:
        postmaster = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
        for process in (postmaster, *map(int, children)):
            os.sched_setaffinity(process, {cpu})
    except (OSError, IndexError, ValueError):
        return False
    return True


def dialtone_target(name: str, url: str) -> Target:
    env = {
        **development_values(),
        "DIALTONE_DATABASE_URL": url,
        "DIALTONE_DEFAULT_REGION": "JP",
    }
    return Target(name, [str(BIN / "dialtone"), "serve", "--port", "{port}"], env)


def medians(rounds: list[dict]) -> dict:
    """Per target and connection count, the median of each figure over the rounds (the
    error counts summed: any error in any round counts)."""
    summed = ("over_1s", "non_2xx", "requests")
    results: dict = {}
    for name in rounds[0]:
        results[name] = {}
        for connections in rounds[0][name]:
            runs = [r[name][connections] for r in rounds]
            merged = {
                key: sum(run[key] for run in runs)
                if key in summed
                else round(statistics.median(run[key] for run in runs), 2)
                for key in runs[0]
                if key != "socket_errors"
            }
            merged["socket_errors"] = {
                kind: sum(run["socket_errors"][kind] for run in runs)
                for kind in runs[0]["socket_errors"]
            }
            results[name][connections] = merged
    return results


def ratios(results: dict, dialtone: str, other: str) -> dict:
    return {
        c: round(results[dialtone][c]["requests_per_s"] / results[other][c]["requests_per_s"], 3)
        for c in results[dialtone]
    }


def goals(results: dict, dialtone_names: list[str]) -> dict:
    report = {}
    for name in dialtone_names:
        vs_starlette = ratios(results, name, "starlette (bare, constant TwiML)")
        vs_gunicorn = ratios(results, name, "flask quickstart on gunicorn (1 sync)")
        vs_flask = ratios(results, name, "flask quickstart on flask's server")
        at_64 = results[name]["64"]
        report[name] = {
            "vs_starlette": vs_starlette,
            "vs_gunicorn_flask": vs_gunicorn,
            "vs_flask_server": vs_flask,
            "pass": {
                f">= {GOAL_VS_STARLETTE}x starlette": min(vs_starlette.values())
                >= GOAL_VS_STARLETTE,
                f">= {GOAL_VS_GUNICORN}x gunicorn-flask": min(vs_gunicorn.values())
                >= GOAL_VS_GUNICORN,
                f">= {GOAL_VS_FLASK}x flask server": min(vs_flask.values()) >= GOAL_VS_FLASK,
                f"p99 < {GOAL_P99_MS_AT_64} ms at 64": at_64["p99_ms"] < GOAL_P99_MS_AT_64,
                "no errors, none over 1 s": all(
                    r["non_2xx"] == 0 and not any(r["socket_errors"].values()) and not r["over_1s"]
                    for r in results[name].values()
                ),
            },
        }
    for name in dialtone_names:
        if "1,000,000 lines" not in name:  # names end "… 1,000,000 lines)"
            continue
        base = name.replace("1,000,000 lines", "1 line")
        if base not in results:
            continue
        spread = {
            c: round(results[name][c]["requests_per_s"] / results[base][c]["requests_per_s"], 3)
            for c in results[name]
        }
        report[name]["vs_1_line"] = spread
        report[name]["pass"][f"within {GOAL_SAME_WITH_A_MILLION:.0%} of 1 line"] = all(
            abs(v - 1) <= GOAL_SAME_WITH_A_MILLION for v in spread.values()
        )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="per target and load")
    parser.add_argument("--quick", action="store_true", help="3 s per target and load")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every target this many times, interleaved; report the medians",
    )
    parser.add_argument("--million", action="store_true", help="also with 1,000,000 lines")
    parser.add_argument("--postgres", default=os.environ.get("DIALTONE_TEST_POSTGRES_URL", ""))
    parser.add_argument(
        "--only", action="append", help="run only targets whose name contains this (repeatable)"
    )
    parser.add_argument(
        "--out", default=str(BENCH / "results" / "webhook_throughput.json"), help="results file"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk (Debian/Ubuntu), brew install wrk")
    missing = [tool for tool in ("flask", "gunicorn") if shutil.which(tool, path=str(BIN)) is None]
    if missing:
        sys.exit(f"{', '.join(missing)} missing: .venv/bin/pip install -r bench/requirements.txt")
    seconds = 3 if args.quick else args.seconds
    warmup = 1 if args.quick else 2
    cpus = sorted(os.sched_getaffinity(0))
    pinning = (cpus[0], cpus[1]) if len(cpus) >= 2 else None
    if pinning is None:
        print("one CPU only: server and wrk share it (ratios still compare)")

    quickstart_env = {"TWILIO_AUTH_TOKEN": development_values()["TWILIO_AUTH_TOKEN"]}
    references = [
        Target(
            "starlette (bare, constant TwiML)",
            [
                str(BIN / "python"),
                "-m",
                "uvicorn",
                "starlette_twiml:app",
                "--port",
                "{port}",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=TARGETS,
        ),
        Target(
            "flask quickstart on flask's server",
            [str(BIN / "python"), "flask_quickstart.py", "--port", "{port}"],
            quickstart_env,
            TARGETS,
        ),
        Target(
            "flask quickstart on gunicorn (1 sync)",
            [
                str(BIN / "gunicorn"),
                "--workers",
                "1",
                "--worker-class",
                "sync",
                "--bind",
                "127.0.0.1:{port}",
                "flask_quickstart:app",
            ],
            quickstart_env,
            TARGETS,
        ),
    ]
    report: dict = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "pinned": {"server_cpu": pinning[0], "wrk_cpu": pinning[1]} if pinning else None,
        "load_average_at_start": os.getloadavg(),
        "seconds_per_run": seconds,
        "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0],
        "results": {},
    }
    backends = [("sqlite", None)]
    if args.postgres:
        backends.append(("postgresql", args.postgres))
        if pinning:
            report["postgres_pinned_to_wrk_cpu"] = pin_postgres(args.postgres, pinning[1])
    else:
        print("PostgreSQL skipped: no --postgres URL nor DIALTONE_TEST_POSTGRES_URL")
    sizes = [0, 999_999] if args.million else [0]
    dialtone_names = []
    schemas: list[tuple[str, str]] = []
    rounds: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="webhook-throughput-") as scratch_dir:
        scratch = Path(scratch_dir)
        todo: list[Target] = []
        try:
            for backend, base in backends:
                for filler in sizes:
                    name = f"dialtone serve ({backend}, {filler + 1:,} line{'s' if filler else ''})"
                    if args.only and not any(part in name for part in args.only):
                        continue
                    if backend == "sqlite":
                        url = f"sqlite:///{scratch / f'dialtone-{filler}.db'}"
                    else:
                        schema, url = postgres_schema(base)
                        schemas.append((base, schema))
                    target = dialtone_target(name, url)
                    took = prepare_database(url, {**os.environ, **target.env}, filler)
                    print(f"{target.name}: database ready in {took:.1f} s", flush=True)
                    dialtone_names.append(target.name)
                    todo.append(target)
            todo += [t for t in references if not args.only or any(p in t.name for p in args.only)]
            # Interleaved, so a noisy minute on a shared machine touches every target alike.
            for number in range(1, args.rounds + 1):
                if args.rounds > 1:
                    print(f"round {number} of {args.rounds}", flush=True)
                rounds.append({t.name: measure(t, scratch, seconds, warmup, pinning) for t in todo})
        finally:
            for base, schema in schemas:
                drop_schema(base, schema)
    report["rounds"] = len(rounds)
    report["results"] = medians(rounds)
    if len(rounds) > 1:
        report["each_round"] = rounds
    references_run = all(t.name in report["results"] for t in references)
    if references_run and dialtone_names:
        report["goals"] = goals(report["results"], dialtone_names)
        for name, verdict in report["goals"].items():
            print(f"{name}:")
            for goal, ok in verdict["pass"].items():
                print(f"  {'PASS' if ok else 'FAIL'}  {goal}")
    report["load_average_at_end"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
