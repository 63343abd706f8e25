"""memoserve serving bench: start each server in turn, drive it with wrk, print and save a table.

Run it with ``bash bench/serving/run.sh`` (or ``make bench``), which prepares the MLServer
virtualenv first; see bench/serving/README.md.
"""

from __future__ import annotations

import argparse
import itertools
import re
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType

from load import QUIET_CPU, LoadShape, measure, wait_quiet, warm_up
from models import write_models
from procs import Proc, Procs, Redis, http_request, wait_ready
from report import RowResult, environment, render
from rows import Row, all_rows
from servers import ROOT, mlserver_available, start_memoserve, start_mlserver, start_raw

from memoserve_dev.ports import free_port

SERVER_CPU = 0
LOAD_CPU = 1  # wrk and redis-server share it, as in the baselines
READY_TIMEOUT_S = {"raw": 30.0, "memoserve": 60.0, "mlserver": 120.0}


@dataclass
class Context:
    procs: Procs
    redis: Redis
    shape: LoadShape
    workdir: Path
    run_ids: Iterator[int]
    quiet_budget: float  # seconds left to wait for a quiet machine, over the whole run


def start(row: Row, ctx: Context, port: int) -> Proc | str:
    """The started server, or why it was not run."""
    if row.server == "raw":
        return start_raw(ctx.procs, SERVER_CPU, port, row.http)
    if row.server == "mlserver":
        missing = mlserver_available()
        if missing is not None:
            return missing
        assert row.model is not None
        return start_mlserver(
            ctx.procs,
            SERVER_CPU,
            port,
            model_name=row.model_name,
            model=row.model,
            workdir=ctx.workdir,
        )
    assert row.model is not None
    ctx.redis.cli("FLUSHALL")
    return start_memoserve(
        ctx.procs,
        SERVER_CPU,
        port,
        label=f"memoserve-{row.key}",
        model_name=row.model_name,
        model=row.model,
        model_format=row.model_format,
        redis_url=ctx.redis.url,
        env=row.env,
    )


def check(row: Row, port: int) -> tuple[str, bool]:
    """Two identical requests before the load (like two curls): (what was seen, as expected?).
    memoserve answers the first from the model (miss) and the second from the cache (hit);
    a second "miss" is retried a few times in case the cache write lands just after the reply."""
    path = f"/v2/models/{row.model_name}/infer"
    body = row.workload.body()
    seen: list[str] = []
    for attempt in range(6):
        status, headers, payload = http_request(port, "POST", path, body)
        if status != 200:
            return f"check request got HTTP {status}: {payload[:200]!r}", False
        seen.append(headers.get("x-memoserve-cache", "-"))
        if row.expect is None or (attempt >= 1 and seen[-1] != "miss"):
            break
        if attempt >= 1:
            time.sleep(0.05)
    if row.expect is None:
        return "HTTP 200", True
    ok = seen[0] == "miss" and seen[-1] == "hit"
    text = "→".join(seen)
    return (text if ok else f"UNEXPECTED X-Memoserve-Cache {text}"), ok


@dataclass(frozen=True)
class Counters:
    answers: Counter[str]  # memoserve_requests_total by cache result
    batches: Counter[str]  # memoserve_batch_size "sum" (requests) and "count" (model calls)
    redis: dict[str, int]  # redis INFO stats


_REQUESTS_TOTAL = re.compile(r'^memoserve_requests_total\{.*cache="(?P<cache>\w+)".*\} (?P<n>\S+)$')
_BATCH_SIZE = re.compile(r"^memoserve_batch_size_(?P<kind>sum|count)(\{.*\})? (?P<n>\S+)$")


def counters(ctx: Context, port: int) -> Counters:
    answers: Counter[str] = Counter()
    batches: Counter[str] = Counter()
    for line in http_request(port, "GET", "/metrics")[2].decode().splitlines():
        if match := _REQUESTS_TOTAL.match(line):
            answers[match["cache"]] += round(float(match["n"]))
        elif match := _BATCH_SIZE.match(line):
            batches[match["kind"]] += round(float(match["n"]))
    return Counters(answers, batches, ctx.redis.stats())


def wrk_env(row: Row, ctx: Context) -> tuple[dict[str, str], dict[str, str]]:
    """Lua script settings of the warm-up and of the measured run."""
    work = row.workload
    if not work.distinct:
        body_file = ctx.workdir / f"body-{row.key}.json"
        body_file.write_bytes(work.body())
        return {"BENCH_BODY_FILE": str(body_file)}, {"BENCH_BODY_FILE": str(body_file)}
    base = {
        "BENCH_INPUT_NAME": work.input_name,
        "BENCH_DATATYPE": work.datatype,
        "BENCH_FEATURES": str(work.features),
    }
    # A new run id for each wrk run: no request of the bench ever repeats.
    return (
        {**base, "BENCH_RUN_ID": str(next(ctx.run_ids))},
        {**base, "BENCH_RUN_ID": str(next(ctx.run_ids))},
    )


def run_row(row: Row, ctx: Context) -> RowResult:
    print(f"--- {row.key}: {row.title}", file=sys.stderr)
    ctx.quiet_budget -= wait_quiet(ctx.quiet_budget)
    port = free_port()
    started = start(row, ctx, port)
    if isinstance(started, str):
        return RowResult(row, None, f"not run: {started}")
    proc = started
    try:
        ready = "/" if row.server == "raw" else f"/v2/models/{row.model_name}/ready"
        problem = wait_ready(proc, port, ready, READY_TIMEOUT_S[row.server])
        if problem is not None:
            return RowResult(row, None, f"not run: {problem}")
        seen, ok = check(row, port)
        if not ok and seen.startswith("check request"):
            return RowResult(row, None, f"not run: {seen}")
        url = f"http://127.0.0.1:{port}/v2/models/{row.model_name}/infer"
        script = row.workload.script
        env_warmup, env_measure = wrk_env(row, ctx)
        warm_up(url, script, env_warmup, ctx.shape)
        before = counters(ctx, port) if row.server == "memoserve" else None
        result = measure(
            url,
            script,
            env_measure,
            ctx.shape,
            server_pid=proc.pid,
            helper_pids=[ctx.redis.proc.pid],
        )
        note = seen if proc.alive() else f"{seen}; server DIED during the run"
        if before is None:
            return RowResult(row, result, note, checks_ok=ok)
        after = counters(ctx, port)
        n = max(result.requests, 1)
        hits, misses = (
            (after.redis[k] - before.redis[k]) / n for k in ("keyspace_hits", "keyspace_misses")
        )
        return RowResult(
            row,
            result,
            note,
            checks_ok=ok,
            redis_per_req=(hits, misses),
            answers=after.answers - before.answers,
            batches=after.batches - before.batches,
        )
    except (OSError, RuntimeError, ValueError) as exc:
        return RowResult(row, None, f"not run: {type(exc).__name__}: {exc}")
    finally:
        ctx.procs.stop(proc)


def run_row_quietly(row: Row, ctx: Context) -> RowResult:
    """Run the row; if other processes disturbed it and time is left to wait for a quiet
    machine, run it once more and keep the less disturbed of the two."""
    first = run_row(row, ctx)
    if first.result is None or first.result.other_cpu <= QUIET_CPU or ctx.quiet_budget <= 0:
        return first
    print(f"    disturbed ({first.result.other_cpu:.0%} of a core): once more", file=sys.stderr)
    second = run_row(row, ctx)
    if second.result is None or second.result.other_cpu >= first.result.other_cpu:
        return first
    return second


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop servers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", help="comma-separated row keys (default: all rows)")
    parser.add_argument("--measure", type=int, default=10, help="measured seconds per row")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds per row")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every row this many times, interleaved; report medians (VM noise is ±10 %%)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=90,
        help="seconds, over the whole run, to wait before rows for other processes to go quiet",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results")
    parser.add_argument("--pidfile", type=Path, help="pids of live servers, for run.sh's trap")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)

    stamp = datetime.now().astimezone()
    shape = LoadShape(warmup_s=args.warmup, measure_s=args.measure, cpu=LOAD_CPU)
    rounds: list[list[RowResult]] = []
    with tempfile.TemporaryDirectory(prefix="memoserve-bench-") as tmp:
        workdir = Path(tmp)
        with Procs(workdir, args.pidfile) as procs:
            models = write_models(workdir / "models")
            rows = all_rows(models)
            if args.only:
                wanted = set(args.only.split(","))
                unknown = wanted - {r.key for r in rows}
                if unknown:
                    parser.error(f"unknown rows {sorted(unknown)}; known: {[r.key for r in rows]}")
                rows = [r for r in rows if r.key in wanted]
            setup = environment(models.source)
            redis = Redis(procs, LOAD_CPU)
            ctx = Context(procs, redis, shape, workdir, itertools.count(1), args.quiet_wait)
            for number in range(1, args.rounds + 1):
                if args.rounds > 1:
                    print(f"=== round {number} of {args.rounds}", file=sys.stderr)
                rounds.append([run_row_quietly(row, ctx) for row in rows])
    markdown = render(rounds, stamp=stamp, shape=shape, setup=setup)
    print(markdown)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"serving-{stamp:%Y%m%d-%H%M%S}.md"
    out.write_text(markdown)
    print(f"written: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
