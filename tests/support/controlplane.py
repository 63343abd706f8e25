"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok (simulated nodes whose pods become Running and Ready), plus the metrics
APIs the HPA controller reads (tests/support/metrics_api.py).

Binaries come from ``scripts/build-control-plane.sh`` (built from Go modules, cached outside the
repository). Every port is a free loopback port; certificates are generated per run. Clients
authenticate with static tokens (the admin is in ``system:masters``) or, for the operator, with
a ServiceAccount token so that RBAC applies exactly as in a cluster. Every request is written
to an audit log, which is how tests count the operator's writes.

``python -m tests.support.controlplane`` starts one (with memoserve's CRD and the GKE CRDs
installed) and keeps it up until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memoserve_dev.ports import free_port, wait_for_port
from memoserve_dev.tls import make_tls
from tests.support.metrics_api import MetricsApi

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "scripts" / "build-control-plane.sh"
CLUSTER_DATA = ROOT / "tests" / "e2e" / "cluster"
ADMIN_TOKEN = "memoserve-e2e-admin"  # a throwaway cluster on loopback
BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
)
ISVC_CRD = "inferenceservices.serving.memoserve.dev"
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


class ControlPlaneError(RuntimeError):
    """The control plane could not be built or started; the message says which part and why."""


def control_plane_binaries(build: bool = True) -> Path:
    """The directory with the binaries; builds them when missing and ``build`` is set."""
    cached = subprocess.run(
        ["bash", str(BUILD_SCRIPT)],
        capture_output=True,
        text=True,
        env=os.environ | ({} if build else {"MEMOSERVE_E2E_NO_BUILD": "1"}),
        check=False,
    )
    if cached.returncode != 0:
        raise ControlPlaneError(
            f"{BUILD_SCRIPT.name} failed (exit {cached.returncode}): {cached.stderr[-2000:]}"
        )
    return Path(cached.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class AuditEvent:
    """One completed API request, as the API server's audit log recorded it."""

    user: str
    verb: str
    resource: str
    subresource: str
    namespace: str
    name: str
    code: int
    message: str
    stamp: str

    @property
    def is_write(self) -> bool:
        return self.verb in WRITE_VERBS

    @property
    def refused_by_rbac(self) -> bool:
        """403 because of a missing permission (not, say, a namespace being terminated)."""
        return self.code == 403 and " cannot " in self.message


@dataclass
class ControlPlane:
    workdir: Path
    bin_dir: Path
    api_port: int = 0
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    metrics_api: MetricsApi | None = None

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def kubeconfig(self) -> Path:
        """The admin's kubeconfig (system:masters)."""
        return self.workdir / "admin.kubeconfig"

    @property
    def audit_log(self) -> Path:
        return self.workdir / "audit.log"

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        tls = make_tls(self.workdir / "pki", "127.0.0.1", "test")
        sa_key = self.workdir / "pki" / "service-accounts.key"
        subprocess.run(
            ["openssl", "genrsa", "-out", str(sa_key), "2048"], check=True, capture_output=True
        )
        (self.workdir / "tokens.csv").write_text(f'{ADMIN_TOKEN},admin,admin,"system:masters"\n')
        self.api_port = free_port()
        self._write_kubeconfig(self.kubeconfig, "admin", ADMIN_TOKEN, tls.ca_path)
        etcd_port, etcd_peer = free_port(), free_port()

        self._spawn(
            "etcd",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
            f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
            f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
            f"--initial-cluster=default=http://127.0.0.1:{etcd_peer}",
            "--unsafe-no-fsync",  # a throwaway store: durability costs time and buys nothing
            "--log-level=warn",
        )
        wait_for_port(etcd_port, timeout=30)
        self._spawn(
            "kube-apiserver",
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.api_port}",
            f"--tls-cert-file={tls.cert_path}",
            f"--tls-private-key-file={tls.key_path}",
            f"--client-ca-file={tls.ca_path}",
            f"--token-auth-file={self.workdir / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={sa_key}",
            f"--service-account-signing-key-file={sa_key}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--allow-privileged=true",
            f"--audit-policy-file={CLUSTER_DATA / 'audit-policy.yaml'}",
            f"--audit-log-path={self.audit_log}",
            "--audit-log-format=json",
            "--audit-log-mode=blocking",
            "--audit-log-maxsize=0",
            "--enable-aggregator-routing=true",  # to the metrics API's Endpoints, not a ClusterIP
        )
        self._wait_ready()
        self.metrics_api = MetricsApi(
            self.server, ADMIN_TOKEN, tls.ca_path, tls.cert_path, tls.key_path
        )
        self.metrics_api.start()
        registration = "\n".join(json.dumps(obj) for obj in self.metrics_api.registration())
        self.kubectl("apply", "--server-side", "-f", "-", stdin=registration)
        common = (
            f"--kubeconfig={self.kubeconfig}",
            "--leader-elect=false",
            # No client-side rate limits (as kwokctl --disable-qps-limits): at the default 20
            # requests/s per controller, the Deployment controller alone would set the pace of
            # the scale benchmark. GKE's control plane is not that slow either.
            "--kube-api-qps=5000",
            "--kube-api-burst=10000",
        )
        self._spawn(
            "kube-controller-manager",
            *common,
            f"--secure-port={free_port()}",
            "--bind-address=127.0.0.1",
            f"--service-account-private-key-file={sa_key}",
            f"--root-ca-file={tls.ca_path}",
            "--use-service-account-credentials=false",
            "--controllers=*",
            # GC and HPA as on GKE, just quicker to notice.
            "--horizontal-pod-autoscaler-sync-period=5s",
            "--concurrent-gc-syncs=20",
        )
        self._spawn(
            "kube-scheduler", *common, f"--secure-port={free_port()}", "--bind-address=127.0.0.1"
        )
        self._spawn(
            "kwok",
            f"--kubeconfig={self.kubeconfig}",
            f"--config={self.bin_dir / 'kwok-stages.yaml'}",
            "--node-lease-duration-seconds=40",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--server-address=127.0.0.1:{free_port()}",
            "--cidr=10.244.0.0/16",
            "--node-ip=10.0.0.1",
        )
        self.kubectl("apply", "--server-side", "-f", str(CLUSTER_DATA / "nodes.yaml"))
        self._install_gke_crds()
        # memoserve's own CRD, as `kubectl apply -f crds/` installs it on a cluster.
        self.kubectl("apply", "--server-side", "-f", str(ROOT / "crds" / "inferenceservice.yaml"))
        self._wait_established(f"crd/{ISVC_CRD}")

    def stop(self) -> None:
        if self.metrics_api is not None:
            self.metrics_api.stop()
            self.metrics_api = None
        for name in reversed(list(self.processes)):
            process = self.processes.pop(name)
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def __enter__(self) -> ControlPlane:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- clients ----------------------------------------------------------------------------

    def kubectl(
        self,
        *args: str,
        stdin: str | None = None,
        check: bool = True,
        kubeconfig: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl against this control plane; stderr is in the error on failure."""
        result = subprocess.run(
            [str(self.bin_dir / "kubectl"), f"--kubeconfig={kubeconfig or self.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=180,  # kubectl wait has its own --timeout
            check=False,
        )
        if check and result.returncode != 0:
            raise ControlPlaneError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result

    def get(self, *args: str) -> Any:
        """``kubectl get ARGS -o json``, parsed."""
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def get_or_none(self, *args: str) -> Any:
        """``get``, or None when kubectl finds no such object (or fails otherwise)."""
        result = self.kubectl("get", *args, "-o", "json", check=False)
        return json.loads(result.stdout) if result.returncode == 0 else None

    def service_account_kubeconfig(self, namespace: str, name: str) -> Path:
        """A kubeconfig that authenticates as the ServiceAccount (a TokenRequest token)."""
        token = self.kubectl(
            "create", "token", name, "-n", namespace, "--duration=24h"
        ).stdout.strip()
        path = self.workdir / f"{namespace}.{name}.kubeconfig"
        self._write_kubeconfig(path, f"{namespace}/{name}", token, self.workdir / "pki" / "ca.crt")
        return path

    def audit_events(self, user: str | None = None) -> list[AuditEvent]:
        """Completed requests (optionally of one user), oldest first."""
        return list(_read_audit(self.audit_log, user))

    def log_tail(self, component: str, lines: int = 40) -> str:
        text = (self.workdir / f"{component}.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    # -- internals --------------------------------------------------------------------------

    def _spawn(self, name: str, *args: str) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            dies_with_parent([str(self.bin_dir / name), *args]),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
        )

    def _wait_ready(self, timeout: float = 90.0) -> None:
        context = ssl.create_default_context(cafile=str(self.workdir / "pki" / "ca.crt"))
        request = urllib.request.Request(
            f"{self.server}/readyz", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        deadline = time.monotonic() + timeout
        while True:
            apiserver = self.processes["kube-apiserver"]
            if apiserver.poll() is not None:
                raise ControlPlaneError(
                    f"kube-apiserver exited ({apiserver.returncode}):\n"
                    + self.log_tail("kube-apiserver")
                )
            try:
                with urllib.request.urlopen(request, context=context, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    f"kube-apiserver not ready after {timeout}s:\n"
                    + self.log_tail("kube-apiserver")
                )
            time.sleep(0.25)

    def _write_kubeconfig(self, path: Path, user: str, token: str, ca: Path) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "e2e",
                    "cluster": {"server": self.server, "certificate-authority": str(ca)},
                }
            ],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": user}}],
            "current-context": "e2e",
        }
        path.write_text(json.dumps(config, indent=2))
        path.chmod(0o600)

    def _install_gke_crds(self) -> None:
        """GKE's kinds the operator writes (from our schemas), and the Gateway API's."""
        from tests.support.gateway_crds import CrdsMissing, gateway_crds
        from tests.support.gke_crds import gke_crds

        try:
            crds = [*gke_crds(), *gateway_crds()]
        except CrdsMissing as exc:
            raise ControlPlaneError(str(exc)) from exc
        documents = "\n".join(json.dumps(crd) for crd in crds)
        self.kubectl("apply", "--server-side", "-f", "-", stdin=documents)
        names = [f"crd/{crd['metadata']['name']}" for crd in crds]
        self._wait_established(*names)

    def _wait_established(self, *names: str) -> None:
        """``kubectl wait --for=condition=Established``, which fails at once (instead of
        waiting) on a CRD the API server has not given a status yet ("accessor error")."""
        for _ in range(40):
            try:
                self.kubectl("wait", "--for=condition=Established", *names)
                return
            except ControlPlaneError as exc:
                if "accessor error" not in str(exc):
                    raise
            time.sleep(0.25)
        self.kubectl("wait", "--for=condition=Established", *names)


def dies_with_parent(argv: list[str]) -> list[str]:
    """``argv`` run so that it gets SIGKILL when the process that started it dies, so that a
    killed test run or benchmark leaves no control plane behind (PR_SET_PDEATHSIG, by util-linux's
    setpriv). Not a ``preexec_fn``: that makes subprocess fork() instead of vfork(), and in a
    process that has used gRPC, gRPC's fork handlers then restart its poller in the child, which
    close_fds can kill before exec (seen as a child that died at start)."""
    return ["setpriv", "--pdeathsig", "KILL", "--", *argv]


def _read_audit(path: Path, user: str | None) -> Iterator[AuditEvent]:
    if not path.exists():
        return
    with path.open() as lines:
        for line in lines:
            entry = json.loads(line)
            who = entry.get("user", {}).get("username", "")
            if entry.get("stage") != "ResponseComplete" or (user is not None and who != user):
                continue
            ref = entry.get("objectRef", {})
            yield AuditEvent(
                user=who,
                verb=entry.get("verb", ""),
                resource=ref.get("resource", ""),
                subresource=ref.get("subresource", ""),
                namespace=ref.get("namespace", ""),
                name=ref.get("name", ""),
                code=entry.get("responseStatus", {}).get("code", 0),
                message=entry.get("responseStatus", {}).get("message", ""),
                stamp=entry.get("stageTimestamp", ""),
            )


def main(argv: Sequence[str] | None = None) -> None:
    """Start a control plane in a temporary directory and keep it up until Ctrl-C."""
    import tempfile

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # clean up as on Ctrl-C
    with (
        tempfile.TemporaryDirectory(prefix="memoserve-e2e-") as tmp,
        ControlPlane(Path(tmp), control_plane_binaries()) as plane,
    ):
        print(f"control plane up: {plane.server}")
        print(f"  export KUBECONFIG={plane.kubeconfig}")
        print(f"  kubectl: {plane.bin_dir / 'kubectl'}   logs and audit log: {tmp}")
        print("Ctrl-C stops it and removes everything.")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()
