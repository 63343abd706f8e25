"""The e2e tier: a real control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, kwok) for the session, the operator as a real process running as its
ServiceAccount, and the Memorystore emulator it manages instances in.

Every test here is marked ``e2e`` (``pytest -m e2e`` runs the tier, ``-m "not e2e"`` skips it).
A missing control plane is a failure, never a skip: ``make test`` builds it first.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import OPERATOR_NAMESPACE, OPERATOR_USER, ROOT
from tests.memorystore.emulator_thread import EmulatorThread
from tests.support.controlplane import ControlPlane, ControlPlaneError, control_plane_binaries
from tests.support.operator_process import OperatorProcess

E2E_DIR = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)
            # Under pytest-xdist (`make pytest`), one worker runs the whole tier: one control
            # plane, one operator, while the other workers run the rest.
            item.add_marker(pytest.mark.xdist_group("control-plane"))


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """The control plane (with our CRD) and the operator's namespace, ServiceAccount and RBAC."""
    try:
        plane = ControlPlane(
            tmp_path_factory.mktemp("control-plane"), control_plane_binaries(False)
        )
        plane.start()
    except ControlPlaneError as exc:
        pytest.fail(f"the e2e control plane did not start: {exc}", pytrace=False)
    try:
        for name in ("namespace.yaml", "serviceaccount.yaml", "rbac.yaml"):
            plane.kubectl("apply", "--server-side", "-f", str(ROOT / "manifests" / "base" / name))
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def memorystore_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorThread]:
    emulator = EmulatorThread(tmp_path_factory.mktemp("memorystore"), delay=0.5).start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def operator(
    control_plane: ControlPlane,
    memorystore_emulator: EmulatorThread,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """``memoserve operator`` with exactly manifests/base/rbac.yaml's permissions."""
    kubeconfig = control_plane.service_account_kubeconfig(OPERATOR_NAMESPACE, "memoserve-operator")
    process = OperatorProcess(
        kubeconfig,
        tmp_path_factory.mktemp("operator") / "operator.log",
        {
            "MEMOSERVE_OPERATOR_LEASE_NAMESPACE": OPERATOR_NAMESPACE,
            # Short, so that a restarted operator takes over soon (test_restart), and not shorter:
            # at 3 s a loaded 2-vCPU machine stalled the renewals and the operator stepped down.
            "MEMOSERVE_OPERATOR_LEASE_DURATION_SECONDS": "6",
            "MEMOSERVE_OPERATOR_LEASE_RETRY_SECONDS": "0.5",
            "MEMOSERVE_OPERATOR_RECHECK_SECONDS": "5",
            "MEMOSERVE_OPERATOR_RESYNC_SECONDS": "20",  # two inside test_steady_state's quiet time
            "MEMOSERVE_OPERATOR_CACHE_STATS_SECONDS": "2",
            "MEMOSERVE_OPERATOR_MEMORYSTORE_ENDPOINT": memorystore_emulator.grpc_target,
            # The emulator finishes an operation in 0.5 s: poll it at that pace, not Google's.
            "MEMOSERVE_OPERATOR_MEMORYSTORE_POLL_SECONDS": "0.5",
            "MEMOSERVE_OPERATOR_MEMORYSTORE_MAX_BACKOFF_SECONDS": "2",
            "MEMOSERVE_OPERATOR_GCP_PROJECT": "e2e-project",
            "MEMOSERVE_OPERATOR_GCP_REGION": "us-central1",
        },
    ).start()
    yield process
    process.stop()


@pytest.fixture
def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of the test's own, deleted (in the background) afterwards."""
    slug = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower())[:44].strip("-")
    name = f"{slug}-{hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:6]}"
    control_plane.kubectl("create", "namespace", name)
    yield name
    control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(autouse=True)
def operator_is_never_forbidden(
    request: pytest.FixtureRequest,
) -> Iterator[None]:
    """Any request of the operator's refused by RBAC (403) fails the test that caused it.

    Other 403s are expected: a child event from a namespace being deleted makes the operator
    re-apply into it before the namespace controller got to the InferenceService, and the API
    server refuses new content in a terminating namespace with 403 too."""
    if "operator" not in request.fixturenames:
        yield
        return
    plane: ControlPlane = request.getfixturevalue("control_plane")
    seen = len(plane.audit_events(OPERATOR_USER))
    yield
    forbidden = [e for e in plane.audit_events(OPERATOR_USER)[seen:] if e.refused_by_rbac]
    assert not forbidden, f"RBAC refused the operator: {forbidden}"
