"""The cost table of docs/performance.md: pods needed, coupled vs split, from measured CPU
figures (front_bench.py) and a model's miss capacity per GPU pod (yours to measure).

    .venv/bin/python bench/serving/front_costs.py --misses-per-gpu-pod 400 \\
        --pod-hit-us 44 --pod-miss-us 60 --front-hit-us 40 --front-miss-us 124

Coupled (today): each GPU pod runs one server process, which serves its hits and misses on
one core (``--core-busy`` of it, at most) and its misses on the GPU; pods = the larger need.
Split: GPU pods for the misses alone; the hits and the forwarding on CPU front pods.
"""

from __future__ import annotations

import argparse
import math

RATES = (5_000, 20_000, 50_000)
HIT_RATIOS = (0.5, 0.9, 0.99)


def pods(rate: float, hit: float, args: argparse.Namespace) -> tuple[int, int, float]:
    """(coupled GPU pods, split GPU pods, split front vCPUs)."""
    misses = rate * (1 - hit)
    gpu = math.ceil(misses / args.misses_per_gpu_pod)
    pod_cpu = rate * (hit * args.pod_hit_us + (1 - hit) * args.pod_miss_us) / 1e6
    coupled = max(gpu, math.ceil(pod_cpu / args.core_busy), 1)
    front_cpu = rate * (hit * args.front_hit_us + (1 - hit) * args.front_miss_us) / 1e6
    return coupled, max(gpu, 1), front_cpu / args.core_busy


def main() -> None:
    parser = argparse.ArgumentParser(description="pods needed, coupled vs split")
    parser.add_argument("--misses-per-gpu-pod", type=float, required=True)
    parser.add_argument("--pod-hit-us", type=float, required=True)
    parser.add_argument("--pod-miss-us", type=float, required=True, help="CPU, without the model")
    parser.add_argument("--front-hit-us", type=float, required=True)
    parser.add_argument("--front-miss-us", type=float, required=True)
    parser.add_argument("--core-busy", type=float, default=0.8, help="planned use of a core")
    args = parser.parse_args()
    print(
        f"A GPU pod answers {args.misses_per_gpu_pod:,.0f} misses/s. "
        "Columns: GPU pods coupled | split: GPU pods + front vCPUs"
    )
    print("| req/s | hit ratio | coupled: GPU pods | split: GPU pods | split: front vCPUs |")
    print("|---:|---:|---:|---:|---:|")
    for rate in RATES:
        for hit in HIT_RATIOS:
            coupled, gpu, front = pods(rate, hit, args)
            print(f"| {rate:,} | {hit:.0%} | {coupled} | {gpu} | {front:.1f} |")


if __name__ == "__main__":
    main()
