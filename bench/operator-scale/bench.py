"""The operator at scale (``make bench-operator``): N InferenceServices on the e2e control plane.

For each N, on a fresh control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, kwok) with a fresh ``memoserve operator`` running as its ServiceAccount:
create N InferenceServices at once (kubectl, one request each), wait until every one reports
Ready (its kwok pod Running and Ready), then watch a minute of steady state. Printed per N:
seconds until all Ready, the operator's API writes per InferenceService until then (from the
API server's audit log; Lease renewals excluded), its writes in the steady minute, its peak RSS
and CPU seconds. A markdown table goes to stdout and to bench/results/operator-scale-*.md.

Not a test: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.controlplane import ControlPlane, control_plane_binaries  # noqa: E402
from tests.support.operator_process import OperatorProcess  # noqa: E402

OPERATOR_NAMESPACE = "memoserve-system"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:memoserve-operator"
ISVC = "inferenceservices.serving.memoserve.dev"
NAMESPACE = "scale"


@dataclass
class Result:
    count: int
    converge_seconds: float
    writes_per_service: float
    steady_writes: int
    idle: Usage  # the operator before the first InferenceService
    end: Usage  # after the steady minute


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _operator_writes(plane: ControlPlane, since: str = "", until: str = "~") -> int:
    return sum(
        1
        for e in plane.audit_events(OPERATOR_USER)
        if e.is_write and e.resource != "leases" and since <= e.stamp <= until
    )


@dataclass(frozen=True)
class Usage:
    rss_mib: float  # now
    peak_rss_mib: float  # the most it ever held (VmHWM)
    cpu_seconds: float


def _proc_usage(pid: int) -> Usage:
    """Memory and CPU time of a running process, from /proc."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return Usage(
        rss_mib=int(status["VmRSS"].split()[0]) / 1024,
        peak_rss_mib=int(status["VmHWM"].split()[0]) / 1024,
        cpu_seconds=ticks / os.sysconf("SC_CLK_TCK"),
    )


def _services(count: int) -> list[str]:
    return [
        json.dumps(
            {
                "apiVersion": "serving.memoserve.dev/v1alpha1",
                "kind": "InferenceService",
                "metadata": {"name": f"model-{i:04d}", "namespace": NAMESPACE},
                "spec": {"model": {"uri": f"gs://scale-models/m{i}/", "format": "sklearn"}},
            }
        )
        for i in range(count)
    ]


def _create(plane: ControlPlane, services: list[str], clients: int = 4) -> None:
    """Create the services with ``clients`` kubectl processes at once, as a busy GitOps sync
    would: one kubectl alone (a request at a time) would set the pace, not the operator."""
    chunks = ["\n".join(services[i::clients]) for i in range(clients)]
    with ThreadPoolExecutor(clients) as pool:
        for _ in pool.map(lambda chunk: plane.kubectl("create", "-f", "-", stdin=chunk), chunks):
            pass


def _ready_count(plane: ControlPlane) -> int:
    listed = plane.get(ISVC, "-n", NAMESPACE)["items"]
    return sum(
        1
        for item in listed
        for c in item.get("status", {}).get("conditions", [])
        if c["type"] == "Ready" and c["status"] == "True"
    )


def run_one(count: int, workdir: Path, bin_dir: Path, steady_seconds: int) -> Result:
    with ControlPlane(workdir, bin_dir) as plane:
        for name in ("namespace.yaml", "serviceaccount.yaml", "rbac.yaml"):
            plane.kubectl("apply", "--server-side", "-f", str(ROOT / "manifests" / "base" / name))
        plane.kubectl("create", "namespace", NAMESPACE)
        kubeconfig = plane.service_account_kubeconfig(OPERATOR_NAMESPACE, "memoserve-operator")
        operator = OperatorProcess(
            kubeconfig,
            workdir / "operator.log",
            {
                "MEMOSERVE_OPERATOR_LEASE_NAMESPACE": OPERATOR_NAMESPACE,
                "MEMOSERVE_LOG_LEVEL": "WARNING",
            },
        ).start()
        try:
            time.sleep(3)  # the operator is up and leading before the clock starts
            idle = _proc_usage(operator.pid)
            start, started = time.monotonic(), _stamp()
            _create(plane, _services(count))
            print(f"  N={count}: created in {time.monotonic() - start:.1f}s", file=sys.stderr)
            ready = 0
            while ready < count:
                time.sleep(2)
                ready = _ready_count(plane)
                print(
                    f"  N={count}: {ready} Ready after {time.monotonic() - start:.0f}s",
                    file=sys.stderr,
                )
                if not operator.running():
                    raise RuntimeError("the operator exited:\n" + operator.log())
            converged = time.monotonic() - start
            writes = _operator_writes(plane, started, _stamp())
            time.sleep(10)  # let the last status writes land before the steady window
            quiet = _stamp()
            time.sleep(steady_seconds)
            steady = _operator_writes(plane, quiet, _stamp())
            end = _proc_usage(operator.pid)
        finally:
            operator.stop()
    return Result(count, converged, writes / count, steady, idle, end)


def table(results: list[Result], steady_seconds: int) -> str:
    lines = [
        f"| InferenceServices | all Ready after | writes / service to converge "
        f"| writes in {steady_seconds} s steady | operator RSS idle / peak / after "
        "| operator CPU |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.count} | {r.converge_seconds:.0f} s | {r.writes_per_service:.1f} "
            f"| {r.steady_writes} | {r.idle.rss_mib:.0f} / {r.end.peak_rss_mib:.0f} / "
            f"{r.end.rss_mib:.0f} MiB | {r.end.cpu_seconds - r.idle.cpu_seconds:.0f} s |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="100,500,1000")
    parser.add_argument("--steady-seconds", type=int, default=60)
    args = parser.parse_args()
    bin_dir = control_plane_binaries()
    results = []
    for count in (int(c) for c in args.counts.split(",")):
        with tempfile.TemporaryDirectory(prefix=f"memoserve-scale-{count}-") as tmp:
            results.append(run_one(count, Path(tmp), bin_dir, args.steady_seconds))
    report = table(results, args.steady_seconds)
    print(report)
    out = ROOT / "bench" / "results" / f"operator-scale-{datetime.now(UTC):%Y%m%d-%H%M%S}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"{os.uname().nodename}, {os.cpu_count()} CPUs\n\n{report}\n")


if __name__ == "__main__":
    main()
