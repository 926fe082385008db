"""The registry at a million lines: `dialtone lines import` time and peak memory, lookups.

    .venv/bin/python bench/registry_scale.py                    # 1,000,000 lines
    .venv/bin/python bench/registry_scale.py --quick            # 100,000 lines, fewer samples
    .venv/bin/python bench/registry_scale.py --postgres URL     # also PostgreSQL (or set
                                                                # DIALTONE_TEST_POSTGRES_URL)

1. A CSV of N lines (JP 050 numbers, one Argon2id hash computed once and reused in the
   `password_hash` column) is written in seconds.
2. `dialtone lines import` runs on it as a user runs it, in a child process, on a fresh SQLite
   file and on a fresh PostgreSQL schema; wall time and the child's peak RSS (its rusage) are
   recorded. On PostgreSQL the import is also run with INSERT executemany instead of COPY.
   Goal (issue 11, P3): < 120 s and < 300 MB for 1,000,000 lines.
3. Lookups with 1 line vs N lines: `LineRegistry.by_number` (what call_incoming does) and
   `by_client_name` (call_outgoing), p50/p99 over random registered lines, plus the
   Argon2id verify that dominates a token request. Goal: lookup p99 within 10 %.
4. Hashing plain passwords: serial vs threads vs a process pool, and the CLI's rate on a
   small file of plain passwords (the million-line time it implies).

Results: bench/results/registry_scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from argon2 import PasswordHasher
from postgres_schemas import drop_schema, postgres_schema

DIALTONE = Path(sys.executable).with_name("dialtone")
FIRST = 10_000_000  # +8150 1000 0000 onwards: valid JP 050 numbers
GOAL_SECONDS = 120
GOAL_RSS_MB = 300
GOAL_LOOKUP_RATIO = 1.10


def number(index: int) -> str:
    return f"+8150{FIRST + index:08d}"


def write_csv(path: Path, count: int, password_hash: str) -> float:
    started = time.perf_counter()
    with path.open("w", buffering=1 << 20) as handle:
        handle.write("number,client_name,password_hash\n")
        for start in range(0, count, 10_000):
            handle.write(
                "".join(
                    f'{number(i)},line_{i:07d},"{password_hash}"\n'  # PHC has commas
                    for i in range(start, min(start + 10_000, count))
                )
            )
    return time.perf_counter() - started


def _unrooted(text: str) -> str:
    return re.sub(r"(/[^\s/]+)+/([^\s/]+)", r"\2", text)


def timed_child(argv: list[str], env: dict[str, str]) -> dict:
    """Run a child to completion: wall seconds, its own peak RSS (wait4's rusage), status."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(argv, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        return {
            "seconds": round(seconds, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "exit": child.returncode,
            # The scratch folder's path says nothing about the run: keep file names only.
            "stdout": _unrooted(out.read().decode().strip()[-300:]),
            "stderr_tail": _unrooted(err.read().decode().strip()[-300:]),
        }


def run_import(csv_path: Path, url: str, *, copy: bool = True) -> dict:
    env = {**os.environ, "DIALTONE_DATABASE_URL": url}
    # Create the schema first, so the import's time is the import's alone.
    subprocess.run([str(DIALTONE), "db", "upgrade"], env=env, check=True, capture_output=True)
    if copy:
        argv = [str(DIALTONE), "lines", "import", str(csv_path)]
    else:
        argv = [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from dialtone.server.db import Database; "
            "from dialtone.server.line_import import import_lines; "
            "r = import_lines(Database(sys.argv[1]), Path(sys.argv[2]), use_copy=False); "
            "print('imported', r.imported)",
            url,
            str(csv_path),
        ]
    return timed_child(argv, env)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def lookups(urls: dict[str, tuple[str, int]], samples: int) -> dict:
    """by_number / by_client_name latency (ms) over random registered lines, for each
    registry in `urls` (label: (url, lines)), interleaved sample by sample so load changes
    hit every registry alike."""
    from dialtone.server.db import Database
    from dialtone.server.registry import LineRegistry

    registries = {
        label: (LineRegistry(Database(url), "JP"), count) for label, (url, count) in urls.items()
    }
    rng = random.Random(11)
    result: dict = {label: {} for label in urls}
    for kind, key in (
        ("by_number", number),
        ("by_client_name", lambda i: f"line_{i:07d}"),
    ):
        times: dict[str, list[float]] = {label: [] for label in urls}
        for sample in range(samples + 50):  # the first 50 warm pools and statement caches
            for label, (registry, count) in registries.items():
                lookup = getattr(registry, kind)
                wanted = key(rng.randrange(count))
                started = time.perf_counter()
                found = lookup(wanted)
                elapsed = (time.perf_counter() - started) * 1000
                assert found is not None, wanted
                if sample >= 50:
                    times[label].append(elapsed)
        for label, values in times.items():
            result[label][kind] = {
                "p50_ms": round(statistics.median(values), 3),
                "p99_ms": round(percentile(values, 0.99), 3),
            }
    for registry, _ in registries.values():
        registry.db.dispose()
    return result


def seed_one(url: str, password_hash: str) -> None:
    """A registry with only the first line, as written by the import's own path."""
    with tempfile.TemporaryDirectory() as scratch:
        one = Path(scratch) / "one.csv"
        write_csv(one, 1, password_hash)
        result = run_import(one, url)
        assert result["exit"] == 0, result


def verify_ms(password_hash: str, rounds: int) -> float:
    hasher = PasswordHasher()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        hasher.verify(password_hash, "bench password 1")
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def hashing_modes(count: int) -> dict:
    """Milliseconds per hash: serial, threads and processes (one per CPU)."""
    hasher = PasswordHasher()
    cpus = len(os.sched_getaffinity(0))
    words = [f"bench password {i}" for i in range(count)]
    result = {"cpus": cpus}
    started = time.perf_counter()
    for word in words:
        hasher.hash(word)
    result["serial_ms_per_hash"] = round((time.perf_counter() - started) * 1000 / count, 1)
    with ThreadPoolExecutor(cpus) as pool:
        started = time.perf_counter()
        list(pool.map(hasher.hash, words))
        result["threads_ms_per_hash"] = round((time.perf_counter() - started) * 1000 / count, 1)
    with ProcessPoolExecutor(cpus) as pool:
        list(pool.map(hasher.hash, words[:cpus]))  # workers started outside the timing
        started = time.perf_counter()
        list(pool.map(hasher.hash, words, chunksize=max(1, count // cpus // 4)))
        result["processes_ms_per_hash"] = round((time.perf_counter() - started) * 1000 / count, 1)
    return result


def plain_import(url: str, count: int, scratch: Path) -> dict:
    path = scratch / "plain.csv"
    with path.open("w") as handle:
        handle.write("number,client_name,password\n")
        for i in range(count):
            handle.write(f"{number(i)},plain_{i:07d},bench password {i}\n")
    result = run_import(path, url)
    result["lines"] = count
    result["lines_per_s"] = round(count / result["seconds"], 1)
    result["implied_hours_for_1m"] = round(1_000_000 / result["lines_per_s"] / 3600, 1)
    return result


def backend(name: str, url: str, csv_path: Path, count: int, samples: int, ready: str) -> dict:
    """Import N lines, time lookups; then the same lookups with one line."""
    print(f"[{name}] importing {count:,} lines …", flush=True)
    imported = run_import(csv_path, url)
    print(f"[{name}]   {imported['seconds']} s, peak RSS {imported['peak_rss_mb']} MB", flush=True)
    if imported["exit"]:
        raise RuntimeError(f"the import failed: {imported['stderr_tail']}")
    result: dict = {"import": imported}
    result["import"]["goal_met"] = (
        imported["exit"] == 0
        and imported["seconds"] < GOAL_SECONDS * count / 1_000_000
        and imported["peak_rss_mb"] < GOAL_RSS_MB
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 lines, fewer samples")
    parser.add_argument("--postgres", default=os.environ.get("DIALTONE_TEST_POSTGRES_URL", ""))
    parser.add_argument("--samples", type=int, default=5000, help="lookups per measurement")
    parser.add_argument("--plain", type=int, default=64, help="rows of the plain-password file")
    parser.add_argument(
        "--out", default=str(Path(__file__).with_name("results") / "registry_scale.json")
    )
    args = parser.parse_args()
    count = 100_000 if args.quick and args.lines == 1_000_000 else args.lines
    samples = 1000 if args.quick else args.samples
    ready = PasswordHasher().hash("bench password 1")
    report: dict = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "lines": count,
        "goals": {
            "import_seconds_per_million": GOAL_SECONDS,
            "import_peak_rss_mb": GOAL_RSS_MB,
            "lookup_p99_ratio": GOAL_LOOKUP_RATIO,
        },
        "backends": {},
    }
    with tempfile.TemporaryDirectory(prefix="registry-scale-") as scratch_dir:
        scratch = Path(scratch_dir)
        csv_path = scratch / "lines.csv"
        report["csv_seconds"] = round(write_csv(csv_path, count, ready), 2)
        report["csv_mb"] = round(csv_path.stat().st_size / 1e6, 1)
        print(f"CSV of {count:,} lines in {report['csv_seconds']} s", flush=True)
        targets: list[tuple[str, str, str | None]] = [
            ("sqlite", f"sqlite:///{scratch / 'big.db'}", None),
        ]
        if args.postgres:
            schema, url = postgres_schema(args.postgres)
            targets.append(("postgresql", url, schema))
        else:
            print("PostgreSQL skipped: no --postgres URL nor DIALTONE_TEST_POSTGRES_URL")
        for name, url, schema in targets:
            try:
                result = backend(name, url, csv_path, count, samples, ready)
                if name == "postgresql":
                    _, other = postgres_schema(args.postgres)
                    plain_schema = other.rsplit("search_path%3D", 1)[-1]
                    try:
                        result["import_executemany"] = run_import(csv_path, other, copy=False)
                    finally:
                        drop_schema(args.postgres, plain_schema)
                    print(
                        f"[{name}]   executemany instead of COPY: "
                        f"{result['import_executemany']['seconds']} s",
                        flush=True,
                    )
                # The same lookups with a single registered line, side by side.
                if name == "sqlite":
                    one_url = f"sqlite:///{scratch / 'one.db'}"
                    one_schema = None
                else:
                    one_schema, one_url = postgres_schema(args.postgres)
                try:
                    seed_one(one_url, ready)
                    measured = lookups({"n": (url, count), "1": (one_url, 1)}, samples)
                finally:
                    if one_schema:
                        drop_schema(args.postgres, one_schema)
                result["lookup_n_lines"], result["lookup_1_line"] = measured["n"], measured["1"]
                ratios = {
                    kind: round(
                        result["lookup_n_lines"][kind]["p99_ms"]
                        / result["lookup_1_line"][kind]["p99_ms"],
                        2,
                    )
                    for kind in result["lookup_n_lines"]
                }
                result["lookup_p99_ratio_n_to_1"] = ratios
                result["lookup_goal_met"] = all(r <= GOAL_LOOKUP_RATIO for r in ratios.values())
                print(f"[{name}]   lookup p99 ratio N/1: {ratios}", flush=True)
                report["backends"][name] = result
            finally:
                if schema:
                    drop_schema(args.postgres, schema)
        report["argon2_verify_ms"] = verify_ms(ready, 5 if args.quick else 20)
        report["hashing"] = hashing_modes(8 if args.quick else 32)
        print(f"hashing: {report['hashing']}", flush=True)
        report["plain_password_import_sqlite"] = plain_import(
            f"sqlite:///{scratch / 'plain.db'}", args.plain // (2 if args.quick else 1), scratch
        )
        print(f"plain passwords: {report['plain_password_import_sqlite']}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
