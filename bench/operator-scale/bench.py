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
    peak_rss_mib: float
    cpu_seconds: float


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _operator_writes(plane: ControlPlane, since: str = "", until: str = "~") -> int:
    return sum(
        1
        for e in plane.audit_events(OPERATOR_USER)
        if e.is_write and e.resource != "leases" and since <= e.stamp <= until
    )


def _proc_usage(pid: int) -> tuple[float, float]:
    """(peak RSS in MiB, CPU seconds) of a running process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    peak_kib = next(
        int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")
    )
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return peak_kib / 1024, ticks / os.sysconf("SC_CLK_TCK")


def _services(count: int) -> str:
    items = [
        {
            "apiVersion": "serving.memoserve.dev/v1alpha1",
            "kind": "InferenceService",
            "metadata": {"name": f"model-{i:04d}", "namespace": NAMESPACE},
            "spec": {"model": {"uri": f"gs://scale-models/m{i}/", "format": "sklearn"}},
        }
        for i in range(count)
    ]
    return "\n".join(json.dumps(item) for item in items)


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
        plane.kubectl("apply", "--server-side", "-f", str(ROOT / "crds" / "inferenceservice.yaml"))
        plane.kubectl("wait", "--for=condition=Established", f"crd/{ISVC}")
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
            start, started = time.monotonic(), _stamp()
            plane.kubectl("create", "-f", "-", stdin=_services(count))
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
            rss, cpu = _proc_usage(operator.pid)
        finally:
            operator.stop()
    return Result(count, converged, writes / count, steady, rss, cpu)


def table(results: list[Result], steady_seconds: int) -> str:
    lines = [
        f"| InferenceServices | all Ready after | writes / service to converge "
        f"| writes in {steady_seconds} s steady | operator peak RSS | operator CPU |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.count} | {r.converge_seconds:.0f} s | {r.writes_per_service:.1f} "
            f"| {r.steady_writes} | {r.peak_rss_mib:.0f} MiB | {r.cpu_seconds:.0f} s |"
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
