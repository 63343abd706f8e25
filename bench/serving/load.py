"""The load generator: wrk, one thread, 32 connections, pinned to its own CPU.

A row is a warm-up run (discarded) then the measured run, each wrapped in ``timeout``. The Lua
scripts print one ``BENCH ...`` line with wrk's own figures. Over the measured run this also
records how busy each core was and how much CPU the server, wrk and redis-server used, so a
run disturbed by other work on the machine shows as "other" CPU, and the server's CPU time per
request (which such disturbance moves much less than req/s) can be read directly.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

LUA_DIR = Path(__file__).resolve().parent / "lua"
CLK_TCK = os.sysconf("SC_CLK_TCK")
QUIET_CPU = 0.10  # cores that processes outside the bench may use without a warning


@dataclass(frozen=True)
class LoadShape:
    connections: int = 32
    warmup_s: int = 2
    measure_s: int = 10
    cpu: int = 1  # wrk's core


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_us: int
    non2xx: int
    socket_errors: int  # connect + read + write + timeout
    p50_us: int
    p99_us: int
    max_us: int
    cpu_busy: tuple[float, ...]  # per core, in cores (0..1), over the measured run
    process_cpu: float  # in cores, all cores: user + nice + system time
    server_cpu: float  # in cores: the server process and its children
    bench_cpu: float  # in cores: wrk and the other helpers (redis-server)
    # wrk's voluntary context switches: each time it waited for a response and had to be woken.
    # On loopback the server's write pays for that wake-up (docs/performance.md).
    client_sleeps: int = 0

    @property
    def rps(self) -> float:
        return self.requests / (self.duration_us / 1e6) if self.duration_us else 0.0

    @property
    def other_cpu(self) -> float:
        """CPU (in cores) used by processes that are not part of the bench."""
        return max(0.0, self.process_cpu - self.server_cpu - self.bench_cpu)

    @property
    def client_sleeps_per_request(self) -> float:
        return self.client_sleeps / self.requests if self.requests else 0.0

    @property
    def server_us_per_request(self) -> float:
        return self.server_cpu * self.duration_us / self.requests if self.requests else 0.0


def core_ticks() -> list[tuple[int, int, int]]:
    """(busy, busy in processes, total) ticks per core from /proc/stat. "In processes" is user +
    nice + system: what per-process accounting can see (not irq/softirq, e.g. loopback
    networking, nor steal)."""
    out = []
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name != "cpu":
            ticks = [int(x) for x in fields[:8]]  # user nice system idle iowait irq softirq steal
            idle = ticks[3] + ticks[4]
            out.append((sum(ticks) - idle, sum(ticks[:3]), sum(ticks)))
    return out


def tree_ticks(roots: Iterable[int]) -> int:
    """utime + stime of the given processes and all their live descendants."""
    parent: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        pid = int(entry.name)
        parent[pid] = int(fields[1])
        ticks[pid] = int(fields[11]) + int(fields[12])
    wanted = set(roots)
    grew = True
    while grew:
        more = {pid for pid, ppid in parent.items() if ppid in wanted} - wanted
        wanted |= more
        grew = bool(more)
    return sum(ticks.get(pid, 0) for pid in wanted)


def other_cpu(seconds: float = 1.0) -> float:
    """CPU (in cores) used over ``seconds`` by processes that this one did not start."""
    me = [os.getpid()]
    cores0, own0 = core_ticks(), tree_ticks(me)
    start = time.monotonic()
    time.sleep(seconds)
    cores1, own1 = core_ticks(), tree_ticks(me)
    elapsed = time.monotonic() - start
    used = sum(p1 - p0 for (_, p0, _), (_, p1, _) in zip(cores0, cores1, strict=True))
    return max(0.0, (used - (own1 - own0)) / CLK_TCK / elapsed)


def wait_quiet(budget: float, quiet: float = QUIET_CPU) -> float:
    """Wait (at most ``budget`` seconds) until other processes use less than ``quiet`` cores.
    Returns the seconds spent."""
    start = time.monotonic()
    busy = other_cpu()
    if busy < quiet or budget <= 0:
        return time.monotonic() - start
    print(f"    waiting for a quiet machine: others use {busy:.0%} of a core", file=sys.stderr)
    while busy >= quiet and time.monotonic() - start < budget:
        busy = other_cpu()
    spent = time.monotonic() - start
    outcome = "quiet" if busy < quiet else f"still {busy:.0%} busy, going on"
    print(f"    {outcome} after {spent:.0f} s", file=sys.stderr)
    return spent


def parse_bench_line(stdout: str) -> dict[str, float]:
    for line in stdout.splitlines():
        if line.startswith("BENCH "):
            pairs = (item.split("=", 1) for item in line.split()[1:])
            return {key: float(value) for key, value in pairs}
    raise ValueError("wrk printed no BENCH line")


def _wrk(url: str, script: str, env: Mapping[str, str], shape: LoadShape, seconds: int) -> str:
    argv = ["timeout", str(seconds + 10), "taskset", "-c", str(shape.cpu), "wrk", "-t1"]
    argv += [f"-c{shape.connections}", f"-d{seconds}s", "-s", str(LUA_DIR / script), url]
    full_env = {**os.environ, "BENCH_LUA_DIR": str(LUA_DIR), **env}
    # Its own session, so that an interrupted bench kills wrk too, not only `timeout`.
    with subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        start_new_session=True,
    ) as wrk:
        try:
            stdout, stderr = wrk.communicate()
        except BaseException:
            os.killpg(wrk.pid, signal.SIGKILL)
            raise
    if wrk.returncode != 0:
        raise RuntimeError(f"wrk exited {wrk.returncode}: {stderr.strip()[-300:]}")
    return stdout


def warm_up(url: str, script: str, env: Mapping[str, str], shape: LoadShape) -> None:
    _wrk(url, script, env, shape, shape.warmup_s)


def measure(
    url: str,
    script: str,
    env: Mapping[str, str],
    shape: LoadShape,
    *,
    server_pid: int,
    helper_pids: Iterable[int] = (),
) -> WrkResult:
    helpers = list(helper_pids)
    cores0, server0, helpers0 = core_ticks(), tree_ticks([server_pid]), tree_ticks(helpers)
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    stdout = _wrk(url, script, env, shape, shape.measure_s)
    elapsed = time.monotonic() - start
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cores1, server1, helpers1 = core_ticks(), tree_ticks([server_pid]), tree_ticks(helpers)
    wrk_s = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)
    f = parse_bench_line(stdout)
    return WrkResult(
        requests=int(f["requests"]),
        duration_us=int(f["duration_us"]),
        non2xx=int(f["non2xx"]),
        socket_errors=int(f["connect"] + f["read"] + f["write"] + f["timeout"]),
        p50_us=int(f["p50_us"]),
        p99_us=int(f["p99_us"]),
        max_us=int(f["max_us"]),
        cpu_busy=tuple(
            (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0
            for (b0, _, t0), (b1, _, t1) in zip(cores0, cores1, strict=True)
        ),
        process_cpu=sum(p1 - p0 for (_, p0, _), (_, p1, _) in zip(cores0, cores1, strict=True))
        / CLK_TCK
        / elapsed,
        server_cpu=(server1 - server0) / CLK_TCK / elapsed,
        bench_cpu=((helpers1 - helpers0) / CLK_TCK + wrk_s) / elapsed,
        # wrk (and the `timeout` around it, a couple of switches) once both are reaped
        client_sleeps=children1.ru_nvcsw - children0.ru_nvcsw,
    )
