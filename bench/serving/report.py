"""The bench report: results table, ratios against the targets, and the setup, as markdown."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import statistics
import subprocess
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from load import QUIET_CPU, LoadShape, WrkResult
from rows import Row
from servers import MLSERVER_VENV, ROOT


@dataclass(frozen=True)
class RowResult:
    row: Row
    result: WrkResult | None
    note: str
    checks_ok: bool = True
    redis_per_req: tuple[float, float] | None = None  # keyspace hits, misses per request
    answers: Counter[str] | None = None  # memoserve's requests by X-Memoserve-Cache value
    batches: Counter[str] | None = None  # memoserve_batch_size "sum" and "count" over the run

    @property
    def problem(self) -> str | None:
        """Why the numbers of this row cannot be trusted, if they cannot."""
        r = self.result
        if r is None:
            return "not run"
        if r.non2xx or r.socket_errors:
            return f"{r.non2xx} non-2xx, {r.socket_errors} socket errors"
        if not self.checks_ok or "DIED" in self.note:
            return self.note
        expect = self.row.expect
        if expect is not None and self.answers is not None:
            share = self.answers[expect] / max(sum(self.answers.values()), 1)
            if share < MIN_EXPECTED_SHARE:
                return f"only {100 * share:.1f} % of the answers were {expect}"
        return None


@dataclass(frozen=True)
class Ratio:
    title: str
    num: str
    den: str
    target: float | None  # a minimum; None: for information


RATIOS = (
    Ratio("memoserve hit (Redis) / raw ASGI ceiling", "hit-onnx", "raw", 0.6),
    Ratio("memoserve hit (L1) / raw ASGI ceiling", "hit-onnx-l1", "raw", None),
    # The same comparison with both on memoserve's uvicorn protocol: the data plane's own cost.
    Ratio(
        "memoserve hit (Redis) on uvicorn / raw app, both one write per response",
        "hit-onnx-uvicorn",
        "raw-one-write",
        None,
    ),
    # The HTTP server's share: the same hit on granian (the default: HTTP/1.1 in Rust) and on
    # uvicorn (the fallback).
    Ratio("memoserve hit on granian / on uvicorn", "hit-onnx", "hit-onnx-uvicorn", None),
    Ratio("memoserve hit / MLServer, same sklearn model and request", "hit-sklearn", "mlserver", 8),
    # 68 k parameters: the model is ~12 µs of a ~110 µs miss, so no cache-first server can
    # double its throughput by batching on a CPU (docs/performance.md); for information.
    Ratio(
        "miss: batching / no batching, MLP 68 k parameters",
        "miss-small-batch",
        "miss-small-b1",
        None,
    ),
    Ratio(
        "miss: batching / no batching, MLP 2.1 M parameters",
        "miss-large-batch",
        "miss-large-b1",
        2,
    ),
)
HIT_P99_KEY, HIT_P99_MAX_MS = "hit-onnx", 3.0
MIN_EXPECTED_SHARE = 0.99  # of the answers under load that must be the row's hit / miss


def _ms(us: int) -> str:
    return f"{us / 1000:.2f}"


HEADER = (
    "| # | row | what | req/s | p50 ms | p99 ms | non-2xx / sock err | server CPU µs/req"
    " | wrk sleeps / req | CPU0 / CPU1 / other % | cache answers | mean batch"
    " | redis hits / misses per req | check |",
    "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|",
)


def _answers(counts: Counter[str] | None) -> str:
    total = sum(counts.values()) if counts else 0
    if not counts or not total:
        return "-"
    return ", ".join(f"{k} {100 * v / total:.1f} %" for k, v in counts.most_common())


def _row_line(i: int, rr: RowResult) -> str:
    r = rr.result
    cells = [str(i), f"`{rr.row.key}`", rr.row.title]
    if r is None:
        cells += ["-"] * 10 + [rr.note]
    else:
        redis = "-"
        if rr.redis_per_req is not None:
            redis = f"{rr.redis_per_req[0]:.2f} / {rr.redis_per_req[1]:.2f}"
        cpu = " / ".join(f"{100 * c:.0f}" for c in (*r.cpu_busy[:2], r.other_cpu))
        cells += [f"{r.rps:,.0f}", _ms(r.p50_us), _ms(r.p99_us), f"{r.non2xx} / {r.socket_errors}"]
        batch = "-"
        if rr.batches and rr.batches["count"]:
            batch = f"{rr.batches['sum'] / rr.batches['count']:.1f}"
        cells += [f"{r.server_us_per_request:.0f}", f"{r.client_sleeps_per_request:.2f}", cpu]
        cells += [_answers(rr.answers), batch, redis]
        cells.append(rr.note)
    return "| " + " | ".join(cells) + " |"


def _ratio_lines(rounds: Sequence[Sequence[RowResult]]) -> list[str]:
    """Throughput ratios (the verdict), with the same ratio from server CPU per request beside
    them: equal on a quiet machine, and the steadier of the two when it is not. With several
    rounds, each ratio is taken within a round (its two rows ran minutes apart at most) and the
    verdict goes by the median of the rounds."""
    several = len(rounds) > 1
    lines = [
        "| ratio | req/s ratio | by server CPU/req | target | verdict |"
        + (" per round (req/s) |" if several else ""),
        "|---|---:|---:|---:|---|" + ("---|" if several else ""),
    ]
    for ratio in RATIOS:
        by_rps: list[float] = []
        by_cpu: list[float] = []
        trouble: list[str] = []
        disturbed = False
        present = False
        for results in rounds:
            by_key = {rr.row.key: rr for rr in results}
            num, den = by_key.get(ratio.num), by_key.get(ratio.den)
            if num is None or den is None:
                continue  # a row left out with --only
            present = True
            bad = [f"`{x.row.key}` {x.problem}" for x in (num, den) if x.problem]
            a, b = num.result, den.result
            if bad or a is None or b is None or not b.rps or not a.server_us_per_request:
                trouble += bad or ["no numbers"]
                continue
            by_rps.append(a.rps / b.rps)
            by_cpu.append(b.server_us_per_request / a.server_us_per_request)
            disturbed = disturbed or max(a.other_cpu, b.other_cpu) > QUIET_CPU
        if not present:
            continue
        target = "-" if ratio.target is None else f"≥ {ratio.target:g}x"
        per_round = _per_round(by_rps) if several else ""
        if not by_rps:
            lines.append(
                f"| {ratio.title} | - | - | {target} | n/a: {'; '.join(trouble)} |{per_round}"
            )
            continue
        value, cpu = statistics.median(by_rps), statistics.median(by_cpu)
        verdict = "-" if ratio.target is None else "ok" if value >= ratio.target else "BELOW"
        if verdict == "BELOW" and f"{value:.2f}" == f"{ratio.target:.2f}":
            verdict += f" ({value:.3f})"  # a ratio printed as the target itself
        if disturbed:
            verdict += " (disturbed: trust the CPU/req ratio more)"
        if trouble:
            verdict += f" ({len(trouble)} round(s) left out: {'; '.join(trouble)})"
        lines.append(
            f"| {ratio.title} | {value:.2f}x | {cpu:.2f}x | {target} | {verdict} |{per_round}"
        )
    hits = [rr for results in rounds for rr in results if rr.row.key == HIT_P99_KEY]
    if hits:
        title = "memoserve hit (Redis) p99"
        target = f"≤ {HIT_P99_MAX_MS:g} ms"
        measured = [rr.result for rr in hits if rr.result is not None and not rr.problem]
        p99s = [result.p99_us / 1000 for result in measured]
        per_round = _per_round(p99s) if several else ""
        if not p99s:
            lines.append(f"| {title} | - | - | {target} | n/a: `{HIT_P99_KEY}` not measured |")
        else:
            p99 = statistics.median(p99s)
            verdict = "ok" if p99 <= HIT_P99_MAX_MS else "ABOVE"
            if any(result.other_cpu > QUIET_CPU for result in measured):
                verdict += " (disturbed)"
            lines.append(f"| {title} | {p99:.2f} ms | - | {target} | {verdict} |{per_round}")
    return lines


def _per_round(values: Sequence[float]) -> str:
    """The last cell of a ratio line with several rounds: each round's value."""
    return " " + ", ".join(f"{value:.2f}" for value in values) + " |"


def median_rows(rounds: Sequence[Sequence[RowResult]]) -> list[RowResult]:
    """For each row, the round whose req/s is the median one (rows in their first order)."""
    by_key: dict[str, list[RowResult]] = {}
    for results in rounds:
        for rr in results:
            by_key.setdefault(rr.row.key, []).append(rr)
    chosen = []
    for runs in by_key.values():
        measured = sorted((rr.result.rps, i) for i, rr in enumerate(runs) if rr.result is not None)
        chosen.append(runs[measured[(len(measured) - 1) // 2][1]] if measured else runs[0])
    return chosen


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _command(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return "absent"
    lines = (done.stdout or done.stderr).strip().splitlines()  # `wrk -v` exits 1
    return lines[0] if lines else "absent"


def environment(models_source: str) -> list[str]:
    """The setup lines of the report; call it before the run (it reads the load average)."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    load = Path("/proc/loadavg").read_text().split()[0]
    commit = _command(["git", "-C", str(ROOT), "describe", "--always", "--dirty"])
    main = ", ".join(
        f"{d} {_version(d)}"
        for d in ("memoserve", "uvicorn", "uvloop", "httptools", "onnxruntime", "redis")
    )
    mls_py = MLSERVER_VENV / "bin/python"
    get = "import importlib.metadata as m; print(m.version('{}'))"
    mls = ", ".join(
        f"{d} {_command([str(mls_py), '-c', get.format(d)])}"
        for d in ("mlserver", "mlserver-sklearn", "scikit-learn", "uvloop")
    )
    return [
        f"- machine: {cpu}, {os.cpu_count()} CPUs, 1-min load average at the start {load},"
        f" Python {platform.python_version()}, commit `{commit}`",
        f"- wrk: {_command(['wrk', '-v'])}; redis-server: {_command(['redis-server', '-v'])}",
        f"- memoserve venv: {main}",
        f"- MLServer venv: {mls}",
        f"- models: {models_source}",
    ]


def _disturbed(results: Sequence[RowResult]) -> list[str]:
    busy = [
        f"`{rr.row.key}` {100 * rr.result.other_cpu:.0f} %"
        for rr in results
        if rr.result is not None and rr.result.other_cpu > QUIET_CPU
    ]
    if not busy:
        return []
    return [
        "**The machine was not quiet**: processes outside the bench used CPU during "
        + ", ".join(busy)
        + " (of one core). Those rows' req/s and latencies are low; server CPU µs/req is the"
        " steadier figure. Rerun on a quiet machine for numbers to publish.",
        "",
    ]


def render(
    rounds: Sequence[Sequence[RowResult]],
    *,
    stamp: datetime,
    shape: LoadShape,
    setup: Sequence[str],
) -> str:
    lines = [
        f"# memoserve serving bench, {stamp:%Y-%m-%d %H:%M %Z}",
        "",
        f"Server under test pinned to CPU 0; `wrk -t1 -c{shape.connections}` and redis-server"
        f" pinned to CPU 1; {shape.warmup_s} s warm-up + {shape.measure_s} s measured per row;"
        " loopback. p50/p99 at 32 connections mostly show queueing (≈ 32 / req/s).",
        "",
    ]
    results = median_rows(rounds)
    if len(rounds) > 1:
        lines += [
            f"{len(rounds)} rounds, every row once per round in this order; each row below is"
            " its median round by req/s, each ratio the median of its per-round ratios.",
            "",
        ]
    lines += [*_disturbed(results), *HEADER]
    lines += [_row_line(i, rr) for i, rr in enumerate(results, 1)]
    lines += ["", "## Ratios", "", *_ratio_lines(rounds), "", "## Setup", ""]
    lines += setup
    lines += ["- run-to-run noise on this VM is ±10-15 %: read a ratio near its target as a tie"]
    return "\n".join(lines) + "\n"
