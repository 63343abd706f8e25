"""What this machine charges a process for going idle and waking up (docs/performance.md).

The same unit of Python work (decode a v2 JSON body, hash it, encode it) runs in a loop: back to
back, then with a sleep between units (0 s: only the system call; 0.3 ms and 2 ms: the core
goes idle). The process's CPU time per unit is compared: the difference is what one sleep and
wake-up costs in CPU (the system calls, the scheduler, caches and the CPU's state gone cold
meanwhile), charged to the process. A server that is not saturated pays it once per wait: the
cache front behind a slower model server, or a model server behind the front.

    taskset -c 0 .venv/bin/python bench/serving/wake_cost.py [--units 3000] [--rounds 3]

Not part of the tests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from collections.abc import Callable

BODY = (
    b'{"inputs":[{"name":"float_input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}'
)
SLEEPS = (("back to back", None), ("sleep 0", 0.0), ("sleep 0.3 ms", 0.0003), ("sleep 2 ms", 0.002))


def unit(reps: int) -> Callable[[], None]:
    def work() -> None:
        for _ in range(reps):
            document = json.loads(BODY)
            hashlib.sha256(BODY).digest()
            json.dumps(document)

    return work


def cpu_per_unit(work: Callable[[], None], units: int, pause: float | None) -> float:
    """CPU microseconds per unit of work, each unit followed by ``pause`` (None: no sleep)."""
    start = time.process_time()
    for _ in range(units):
        work()
        if pause is not None:
            time.sleep(pause)
    return (time.process_time() - start) / units * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description="CPU charged per sleep and wake-up")
    parser.add_argument("--units", type=int, default=3000, help="units of work per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    print(f"- CPUs this process may run on: {cpus}; Python work units of 1 and 5 repetitions")
    print()
    print("| unit | " + " | ".join(label for label, _ in SLEEPS) + " |")
    print("|---|" + "---:|" * len(SLEEPS))
    for reps in (1, 5):
        work = unit(reps)
        for round_ in range(1, args.rounds + 1):
            base = cpu_per_unit(work, args.units, None)
            cells = [f"{base:.1f}"]
            for _, pause in SLEEPS[1:]:
                units = args.units if pause is None or pause < 0.001 else args.units // 5
                cost = cpu_per_unit(work, units, pause)
                cells.append(f"{cost:.1f} (+{cost - base:.0f})")
            print(f"| {reps} x, round {round_} | " + " | ".join(cells) + " |")
    print()
    print("µs of CPU per unit; in brackets what each sleep and wake-up added to it.")


if __name__ == "__main__":
    main()
