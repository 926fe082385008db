"""Benchmark: how one emulator process carries N concurrent inbound calls.

    .venv/bin/python bench/concurrent_calls.py [--calls 100 --calls 1000] [--repeat 3]

For each size N, N simulated phones call one Twilio number. The number's voice URL answers with
TwiML that speaks and then holds (`<Say>` + a long `<Pause>`), so every call stays up until all N
are answered at once; then every caller hangs up and each call's `completed` status callback must
reach the application exactly once. Mode `api` places and hangs up the calls through the control
API (`POST /emulator/calls`, `.../hangup`), 16 requests at a time; mode `burst` places all N in
one turn of the event loop and later hangs them all up at once (N simultaneous webhooks).
`--say K` makes the callers say K distinct texts (caller i says text i mod K; default 1, everyone
says "Hello."): with real audio each distinct text is synthesized once, shared by its callers.
Threads are sampled every few milliseconds while the calls are set up and torn down
(`threads_sampled_peak`), so a thread that lives only during speech synthesis is counted.

Every measurement runs in a fresh process (the emulator on that process's one asyncio loop, with
the load driver), so its memory is its own; the application answering the webhooks runs in a
separate process. Sizes are interleaved round by round and reported as medians, and the costs per
call are compared as ratios to the smallest size in the same run: machines are noisy, ratios
travel better than absolute numbers. Results go to bench/results/concurrent_calls.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "concurrent_calls.json"
TWILIO_NUMBER = "+815031234567"
HOLD = '<Response><Say>Hello.</Say><Pause length="100000"/></Response>'
HOLD_SAYING = '<Response><Say>Caller number {n}.</Say><Pause length="100000"/></Response>'
DRIVER_CONCURRENCY = 16  # control-API requests in flight at once from the load driver
TIMEOUT = 300.0  # seconds for any one phase before the measurement is declared failed
MODES = ("api", "burst")


def caller(i: int) -> str:
    return f"+8190{10_000_000 + i:08d}"


def hold(caller_number: str, texts: int) -> str:
    """The TwiML for one caller: HOLD, or with `texts` > 1 one of that many distinct texts."""
    if texts <= 1:
        return HOLD
    return HOLD_SAYING.format(n=int(caller_number[-8:]) % texts)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_kib(field: str = "VmRSS") -> int:
    """Resident memory of this process from /proc (kB), or the peak from getrusage elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": round(ordered[-1], 1)}


# -- the application (its own process) ----------------------------------------------------------


def serve_application(port: int, texts: int = 1) -> None:
    """Answers voice requests with HOLD and counts what arrives per CallSid."""
    voice: Counter[str] = Counter()
    status: Counter[str] = Counter()
    statuses: Counter[str] = Counter()

    async def form(request: Request) -> dict[str, str]:
        return dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))

    async def on_voice(request: Request) -> Response:
        params = await form(request)
        voice[params.get("CallSid", "")] += 1
        return Response(hold(params.get("From", ""), texts), media_type="text/xml")

    async def on_status(request: Request) -> Response:
        params = await form(request)
        status[params.get("CallSid", "")] += 1
        statuses[params.get("CallStatus", "")] += 1
        return Response("<Response/>", media_type="text/xml")

    async def on_stats(request: Request) -> JSONResponse:
        return JSONResponse({"voice": voice, "status": status, "statuses": statuses})

    async def on_reset(request: Request) -> JSONResponse:
        voice.clear()
        status.clear()
        statuses.clear()
        return JSONResponse({})

    app = Starlette(
        routes=[
            Route("/voice", on_voice, methods=["POST"]),
            Route("/status", on_status, methods=["POST"]),
            Route("/stats", on_stats, methods=["GET"]),
            Route("/reset", on_reset, methods=["POST"]),
        ]
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# -- one measurement (its own process) --------------------------------------------------------


async def _each(
    http: httpx.AsyncClient, requests: list[tuple[str, dict | None]]
) -> list[httpx.Response]:
    gate = asyncio.Semaphore(DRIVER_CONCURRENCY)

    async def post(path: str, data: dict | None) -> httpx.Response:
        async with gate:
            return await http.post(path, data=data)

    return await asyncio.gather(*(post(path, data) for path, data in requests))


async def _until(condition: Any, what: str, interval: float = 0.02) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting until {what}")
        await asyncio.sleep(interval)


async def measure(calls: int, mode: str, app_url: str, scale: float) -> dict[str, Any]:
    from dialtone.emulator.app import create_app
    from dialtone.emulator.config import Credentials, EmulatorConfig
    from dialtone.emulator.switch import Switch

    credentials = Credentials.from_env({})
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    switch = Switch(EmulatorConfig(credentials=credentials, public_url=base, clock_scale=scale))
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(switch),
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
    )
    serving = asyncio.create_task(server.serve())
    await _until(lambda: server.started, "the emulator is serving")

    limits = httpx.Limits(
        max_connections=DRIVER_CONCURRENCY,
        max_keepalive_connections=DRIVER_CONCURRENCY,
        keepalive_expiry=1.0,
    )
    auth = (credentials.account_sid, credentials.auth_token)
    async with httpx.AsyncClient(base_url=base, auth=auth, limits=limits, timeout=TIMEOUT) as http:
        await http.post(f"{app_url}/reset")
        created = await http.post(
            f"/2010-04-01/Accounts/{credentials.account_sid}/IncomingPhoneNumbers.json",
            data={
                "PhoneNumber": TWILIO_NUMBER,
                "VoiceUrl": f"{app_url}/voice",
                "StatusCallback": f"{app_url}/status",
            },
        )
        created.raise_for_status()

        def answered() -> int:
            return sum(1 for call in switch.calls.values() if call.status == "in-progress")

        peak_live = 0

        async def watch_health() -> None:
            nonlocal peak_live
            while True:
                health = (await http.get("/emulator/health")).json()
                peak_live = max(peak_live, health["live_calls"])
                await asyncio.sleep(0.1)

        sampled_peak = threading.active_count()

        async def sample_threads() -> None:
            nonlocal sampled_peak
            while True:
                sampled_peak = max(sampled_peak, threading.active_count())
                await asyncio.sleep(0.002)

        rss_before = rss_kib()
        threads_before = threading.active_count()
        sampler = asyncio.create_task(sample_threads())
        watcher = asyncio.create_task(watch_health())
        started = time.perf_counter()
        if mode == "api":
            placed = await _each(
                http,
                [
                    ("/emulator/calls", {"From": caller(i), "To": TWILIO_NUMBER})
                    for i in range(calls)
                ],
            )
            rejected = sum(1 for r in placed if r.status_code != 201)
            if rejected:
                raise RuntimeError(f"{rejected} calls were not placed: {placed[0].text}")
            sids = [r.json()["sid"] for r in placed]
        else:  # burst: every phone dials in the same instant (one turn of the loop)
            sids = [switch.place_inbound_call(caller(i), TWILIO_NUMBER).sid for i in range(calls)]
        placed_s = time.perf_counter() - started
        await _until(lambda: answered() == calls, f"all {calls} calls are answered")
        setup_s = time.perf_counter() - started
        in_progress_at_peak = answered()
        health = (await http.get("/emulator/health")).json()
        peak_live = max(peak_live, health["live_calls"])
        rss_peak = rss_kib()
        threads_at_peak = threading.active_count()
        watcher.cancel()

        started = time.perf_counter()
        if mode == "api":
            await _each(http, [(f"/emulator/calls/{sid}/hangup", None) for sid in sids])
        else:  # every caller hangs up in the same instant: a burst of status callbacks
            for sid in sids:
                switch.far_end_hangup(switch.calls[sid])
        await _until(
            lambda: not switch._tasks and all(call.ended for call in switch.calls.values()),
            "every call has ended and every callback has been sent",
        )
        teardown_s = time.perf_counter() - started
        sampler.cancel()
        stats = (await http.get(f"{app_url}/stats")).json()

    server.should_exit = True
    await serving

    ours = set(sids)
    final = Counter(switch.calls[sid].status for sid in sids)
    voice_latency: list[float] = []
    callback_latency: list[float] = []
    failed_webhooks = 0
    for sid in sids:
        for event in switch.calls[sid].events:
            if event["kind"] != "webhook":
                continue
            if event["status"] != 200:
                failed_webhooks += 1
            elif event["purpose"] == "voice_url":
                voice_latency.append(event["latency_ms"])
            else:
                callback_latency.append(event["latency_ms"])
    status_counts = Counter({sid: n for sid, n in stats["status"].items() if sid in ours})
    return {
        "mode": mode,
        "calls": calls,
        "placed_s": round(placed_s, 3),
        "setup_s": round(setup_s, 3),
        "calls_per_s": round(calls / setup_s, 1),
        "teardown_s": round(teardown_s, 3),
        "peak_live_calls": peak_live,
        "in_progress_at_peak": in_progress_at_peak,
        "threads_before": threads_before,
        "threads_at_peak": threads_at_peak,
        "threads_sampled_peak": sampled_peak,
        "rss_before_kib": rss_before,
        "rss_at_peak_kib": rss_peak,
        "rss_per_call_kib": round((rss_peak - rss_before) / calls, 2),
        "peak_rss_kib": rss_kib("VmHWM"),
        "final_statuses": dict(final),
        "voice_requests_answered": sum(1 for sid in ours if stats["voice"].get(sid)),
        "callbacks_expected": calls,
        "callbacks_delivered": sum(status_counts.values()),
        "calls_with_one_callback": sum(1 for n in status_counts.values() if n == 1),
        "failed_webhooks": failed_webhooks,
        "voice_latency_ms": percentiles(voice_latency),
        "callback_latency_ms": percentiles(callback_latency),
    }


# -- the run ------------------------------------------------------------------------------------


def run_one(calls: int, mode: str, app_url: str, scale: float) -> dict[str, Any]:
    command = [sys.executable, __file__, "--measure", str(calls), "--mode", mode]
    command += ["--app", app_url, "--scale", str(scale)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} measurement of {calls} calls failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_of(runs: list[dict[str, Any]], path: str) -> float | None:
    values = []
    for run in runs:
        value: Any = run
        for key in path.split("."):
            value = value[key]
        if value is not None:
            values.append(value)
    return round(statistics.median(values), 3) if values else None


def summarize(mode: str, size: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = all(
        run["peak_live_calls"] >= size
        and run["final_statuses"] == {"completed": size}
        and run["callbacks_delivered"] == size
        and run["calls_with_one_callback"] == size
        and run["voice_requests_answered"] == size
        and run["failed_webhooks"] == 0
        for run in runs
    )
    medians = {
        key: median_of(runs, key)
        for key in (
            "setup_s",
            "calls_per_s",
            "teardown_s",
            "rss_per_call_kib",
            "rss_at_peak_kib",
            "peak_rss_kib",
            "threads_at_peak",
            "threads_sampled_peak",
            "voice_latency_ms.p50",
            "voice_latency_ms.p95",
            "callback_latency_ms.p50",
            "callback_latency_ms.p95",
        )
    }
    medians["setup_ms_per_call"] = round(medians["setup_s"] * 1000 / size, 3)
    medians["teardown_ms_per_call"] = round(medians["teardown_s"] * 1000 / size, 3)
    return {"mode": mode, "calls": size, "all_correct": ok, "median": medians, "runs": runs}


def ratios(results: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Each size against the smallest of its mode: 1.0 means the cost per call does not grow
    with the number of concurrent calls."""
    out = {}
    for mode in MODES:
        ours = [result for result in results if result["mode"] == mode]
        if len(ours) < 2:
            continue
        base = ours[0]["median"]
        for result in ours[1:]:
            here = result["median"]

            def ratio(key: str, here: dict = here, base: dict = base) -> float | None:
                if here[key] is None or not base[key]:
                    return None
                return round(here[key] / base[key], 2)

            out[f"{mode} {result['calls']} vs {ours[0]['calls']}"] = {
                "setup_ms_per_call": ratio("setup_ms_per_call"),
                "teardown_ms_per_call": ratio("teardown_ms_per_call"),
                "rss_per_call_kib": ratio("rss_per_call_kib"),
                "voice_latency_p95": ratio("voice_latency_ms.p95"),
                "callback_latency_p95": ratio("callback_latency_ms.p95"),
            }
    return out


def machine() -> dict[str, Any]:
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "load_average_at_start": load,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def print_summary(results: list[dict[str, Any]], compared: dict[str, Any]) -> None:
    print(
        f"{'mode':<6} {'calls':>6} {'ok':>3} {'setup s':>8} {'calls/s':>8} {'ms/call':>8} "
        f"{'teardown s':>10} {'KiB/call':>9} {'RSS MiB':>8} {'threads':>7} {'peak':>5} "
        f"{'voice p50/p95 ms':>17} {'callback p50/p95 ms':>20}"
    )
    for result in results:
        m = result["median"]
        ok = "yes" if result["all_correct"] else "NO"
        print(
            f"{result['mode']:<6} {result['calls']:>6} {ok:>3} "
            f"{m['setup_s']:>8.2f} {m['calls_per_s']:>8.0f} {m['setup_ms_per_call']:>8.2f} "
            f"{m['teardown_s']:>10.2f} {m['rss_per_call_kib']:>9.1f} "
            f"{m['rss_at_peak_kib'] / 1024:>8.1f} {m['threads_at_peak']:>7.0f} "
            f"{m['threads_sampled_peak']:>5.0f} "
            f"{m['voice_latency_ms.p50']:>8.1f}/{m['voice_latency_ms.p95']:<8.1f} "
            f"{m['callback_latency_ms.p50']:>10.1f}/{m['callback_latency_ms.p95']:<9.1f}"
        )
    for name, values in compared.items():
        print(f"ratio {name}: " + ", ".join(f"{k} {v}" for k, v in values.items()))


def wait_for_application(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/stats", timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the application did not start") from None
            time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--calls",
        type=int,
        action="append",
        help="concurrent calls per measurement; repeat for several sizes (default: 100 and 1000)",
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        action="append",
        help="api: calls placed and hung up through the control API, 16 requests at a time; "
        "burst: all placed, then all hung up, in one turn of the loop (default: both)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are reported")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="real seconds per emulated second (default 1)"
    )
    parser.add_argument(
        "--say",
        type=int,
        default=1,
        metavar="K",
        help="distinct <Say> texts among the callers (default 1: every caller says Hello.)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON goes")
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--app", help=argparse.SUPPRESS)
    parser.add_argument("--serve-application", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve_application:
        serve_application(args.serve_application, args.say)
        return 0
    if args.measure:
        result = asyncio.run(measure(args.measure, args.mode[0], args.app, args.scale))
        print(json.dumps(result))
        return 0

    sizes = sorted(set(args.calls or [100, 1000]))
    modes = [mode for mode in MODES if mode in (args.mode or MODES)]
    port = free_port()
    app_url = f"http://127.0.0.1:{port}"
    application = subprocess.Popen(
        [sys.executable, __file__, "--serve-application", str(port), "--say", str(args.say)]
    )
    try:
        wait_for_application(app_url, application)
        info = machine()
        runs: dict[tuple[str, int], list[dict[str, Any]]] = {
            (mode, size): [] for mode in modes for size in sizes
        }
        for round_ in range(args.repeat):
            for mode, size in runs:  # interleaved: drift on the machine hits every size alike
                run = run_one(size, mode, app_url, args.scale)
                runs[(mode, size)].append(run)
                print(
                    f"round {round_ + 1}/{args.repeat}: {mode} {size} calls, "
                    f"setup {run['setup_s']:.2f} s, teardown {run['teardown_s']:.2f} s, "
                    f"peak live {run['peak_live_calls']}, "
                    f"callbacks {run['callbacks_delivered']}/{run['callbacks_expected']}",
                    flush=True,
                )
    finally:
        application.terminate()
        application.wait(10)

    results = [summarize(mode, size, found) for (mode, size), found in runs.items()]
    compared = ratios(results)
    report = {
        "benchmark": "concurrent_calls",
        "machine": info,
        "settings": {
            "sizes": sizes,
            "modes": modes,
            "repeat": args.repeat,
            "clock_scale": args.scale,
            "driver_concurrency": DRIVER_CONCURRENCY,
            "say_texts": args.say,
            "twiml": HOLD if args.say <= 1 else HOLD_SAYING,
        },
        "results": results,
        "ratios_to_smallest": compared,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_summary(results, compared)
    print(f"written to {args.out}")
    return 0 if all(result["all_correct"] for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
