"""Leader election's Lease calls at the real API server, through the operator's ``KubeClient``.

tests/operator/test_leader.py proves the election's timing on the fake of fake_leases.py, which
claims to keep Leases as the API server does: a POST of a Lease that exists and a PUT carrying a
resourceVersion that is no longer current are refused with 409, which the client maps to
``Conflict`` (a lost race: the candidate stands by). This checks that claim where it matters.
The Lease is the test's own, in the test's namespace (not the session operator's).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from kubernetes_asyncio.client import Configuration
from kubernetes_asyncio.config import load_kube_config

from memoserve_operator.kube.client import Conflict, KubeClient
from memoserve_operator.kube.leader import Elector, Leases
from tests.support.controlplane import ControlPlane

LEASE = "race"


@pytest.fixture
async def kube(control_plane: ControlPlane) -> AsyncIterator[KubeClient]:
    configuration = Configuration()
    await load_kube_config(str(control_plane.kubeconfig), client_configuration=configuration)
    client = await KubeClient.open(configuration)
    yield client
    await client.close()


async def test_a_lost_race_for_the_lease_is_a_conflict(kube: KubeClient, namespace: str) -> None:
    a = Elector(Leases(kube, namespace, LEASE), "a_1")
    b = Elector(Leases(kube, namespace, LEASE), "b_1")
    assert await a.try_once()  # creates the Lease
    read = await b.leases.get()
    assert read is not None
    assert read["spec"]["holderIdentity"] == "a_1"

    with pytest.raises(Conflict):  # b created it at the same time as a
        await b.leases.create({"holderIdentity": "b_1"})
    assert await a.try_once()  # a renews: a new resourceVersion
    with pytest.raises(Conflict):  # b read it before a's renewal, then wrote
        await b.leases.replace(read, read["spec"] | {"holderIdentity": "b_1"})
    assert not await b.try_once()  # held, not expired: b stands by without writing

    a.leading = True  # as acquire() leaves it
    await a.release()
    assert await b.try_once()  # released: b takes it at its next try
    taken = await b.leases.get()
    assert taken is not None
    assert (taken["spec"]["holderIdentity"], taken["spec"]["leaseTransitions"]) == ("b_1", 1)
