"""Leader election (memoserve_operator.kube.leader) against the fake API server's Leases.

Replicas run ``run_elected`` with a stand-in for kopf that records when it acted; the clock is
looptime's, so the real timings (15 s lease, renewal every 5 s, 10 s deadline, 2 s retries) take
no wall time. The last tests run two ``memoserve operator`` processes (real kopf, real time).
The fake's Lease semantics (409 for a stale resourceVersion or an existing name, which the
operator's client calls Conflict) are checked at the real API server by tests/e2e/test_leases.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from memoserve_dev.ports import free_port
from memoserve_operator.kube.leader import (
    Elector,
    LeadershipLost,
    Leases,
    Timing,
    identity,
    lease_namespace,
)
from memoserve_operator.settings import OperatorSettings
from tests.operator.fake_api import (
    ISVC,
    NAMESPACE,
    declare_resources,
    eventually,
    isvc_body,
    mark,
    path,
    requests,
    send,
    write_kubeconfig,
)
from tests.operator.fake_leases import (
    REPLICA,
    LeaseKube,
    Replica,
    lease_client,
    never_two_at_once,
    replicas,
)

pytestmark = pytest.mark.kmock(cls=LeaseKube)

LEASE_NAMESPACE = "memoserve-system"
LEASE = "memoserve-operator"
TIMING = Timing()  # the defaults, as Timing.from_settings(OperatorSettings()) makes them
# looptime jumps to the next timer when a real socket is slow to answer (a loaded machine), so
# bounds on durations get this much slack. That never two replicas act at once needs none: every
# replica runs on the same clock.
SLACK = 3.0
Start = Callable[..., Awaitable[Replica]]


@pytest.fixture
async def api(kmock: LeaseKube) -> AsyncIterator[LeaseKube]:
    yield kmock
    kmock.mend()  # answer what still hangs


@pytest.fixture
async def start(api: LeaseKube) -> AsyncIterator[Start]:
    async with replicas(api, LEASE_NAMESPACE, LEASE) as start:
        yield start


def spec(api: LeaseKube) -> dict[str, Any]:
    lease = api.lease(LEASE_NAMESPACE, LEASE)
    assert lease is not None
    found: dict[str, Any] = lease["spec"]
    return found


def now() -> float:
    return asyncio.get_running_loop().time()


def sent(api: LeaseKube, replica: str, method: str) -> list[Any]:
    return [r for r in api if r.method == method and r.headers.get(REPLICA) == replica]


# --- pure ---------------------------------------------------------------------------------------


def test_identity_is_the_pod_name_and_a_random_suffix() -> None:
    first, second = identity({"POD_NAME": "op-1"}), identity({"POD_NAME": "op-1"})
    assert first.startswith("op-1_")
    assert second.startswith("op-1_")
    assert first != second  # a restarted container never passes for the leader it was
    assert identity({})  # no downward API: the host name


def test_lease_namespace_comes_from_settings_then_the_pod() -> None:
    settings = OperatorSettings()
    assert lease_namespace(settings, {}) == "memoserve-system"
    assert lease_namespace(settings, {"POD_NAMESPACE": "ops"}) == "ops"
    explicit = OperatorSettings(lease_namespace="elsewhere")
    assert lease_namespace(explicit, {"POD_NAMESPACE": "ops"}) == "elsewhere"
    assert OperatorSettings.from_env({"MEMOSERVE_OPERATOR_LEADER_ELECTION": "false"}) == (
        OperatorSettings(leader_election=False)
    )


@pytest.mark.parametrize("duration", [3, 15, 60])
def test_the_leader_stops_before_a_standby_may_take_over(duration: int) -> None:
    timing = Timing.from_settings(OperatorSettings(lease_duration_seconds=duration))
    assert timing.renew_every < timing.renew_deadline
    assert timing.renew_deadline + timing.stop_grace < timing.duration
    assert Timing.from_settings(OperatorSettings()) == TIMING
    assert (TIMING.duration, TIMING.renew_deadline, TIMING.renew_every) == (15, 10, 5)


# --- election -----------------------------------------------------------------------------------


@pytest.mark.looptime
async def test_one_of_two_candidates_leads_and_keeps_leading(api: LeaseKube, start: Start) -> None:
    a, b = await start("a"), await start("b")
    await asyncio.sleep(60)
    [leader] = [r for r in (a, b) if r.acting]
    [standby] = [r for r in (a, b) if r is not leader]
    assert standby.periods == []
    assert len(leader.periods) == 1
    assert spec(api)["holderIdentity"] == leader.elector.identity
    assert spec(api)["leaseDurationSeconds"] == 15
    assert 8 <= len(sent(api, leader.name, "PUT")) <= 12  # a renewal every 5 s
    assert 15 <= len(sent(api, standby.name, "GET")) <= 31  # a try every 2-2.4 s
    assert sent(api, standby.name, "PUT") == []  # a standby never writes a held Lease


@pytest.mark.looptime
async def test_standby_takes_over_when_the_leader_vanishes(api: LeaseKube, start: Start) -> None:
    a = await start("a")
    await eventually(lambda: a.acting)
    b = await start("b")
    await asyncio.sleep(30)
    assert a.task is not None
    a.task.cancel()  # the node died: no release
    vanished = now()
    await eventually(lambda: b.acting, within=30)
    # The last renewal came at most 5 s before; the standby waits 15 s from seeing it.
    assert 10 - SLACK <= b.periods[0][0] - vanished <= 15 + 2.4 + SLACK
    assert spec(api)["holderIdentity"] == b.elector.identity
    assert spec(api)["leaseTransitions"] == 1
    never_two_at_once(a, b)


@pytest.mark.parametrize("lease", ["absent", "released", "expired"])
async def test_of_two_racing_candidates_one_wins(
    api: LeaseKube, lease: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="memoserve_operator.kube.leader")
    if lease == "released":
        api.put_lease(LEASE_NAMESPACE, LEASE, {"holderIdentity": "", "leaseDurationSeconds": 1})
    elif lease == "expired":  # "gone" last renewed 0 s before the candidates first saw it
        api.put_lease(LEASE_NAMESPACE, LEASE, {"holderIdentity": "gone", "leaseDurationSeconds": 0})
    async with lease_client(api, "a") as client_a, lease_client(api, "b") as client_b:
        a = Elector(Leases(client_a, LEASE_NAMESPACE, LEASE), "a_1")
        b = Elector(Leases(client_b, LEASE_NAMESPACE, LEASE), "b_1")
        api.hold_reads(2)  # both read the same resourceVersion, then both write
        won = await asyncio.gather(a.try_once(), b.try_once())
        assert sorted(won) == [False, True]
        winner, loser = (a, b) if won[0] else (b, a)
        assert spec(api)["holderIdentity"] == winner.identity
        assert not await loser.try_once()  # and it stays a standby
    writes = [r for r in api if r.method in ("POST", "PUT")]
    assert len(writes) == 2  # the race did happen: two writes, one refused with 409
    # ... which the operator's client calls a Conflict: a lost race, not a failure.
    lost = [r for r in caplog.records if r.name == "memoserve_operator.kube.leader"]
    assert [(r.levelname, "(HTTP 409)" in r.getMessage()) for r in lost] == [("INFO", True)]


@pytest.mark.looptime
async def test_a_leader_whose_renewal_conflicts_stops_at_once(api: LeaseKube, start: Start) -> None:
    a = await start("a")
    await eventually(lambda: a.acting)

    def intrude() -> None:  # another writer, between the leader's GET and its PUT
        api.put_lease(
            LEASE_NAMESPACE, LEASE, {"holderIdentity": "intruder", "leaseDurationSeconds": 15}
        )

    api.after_next_read(intrude)
    started = now()
    assert a.task is not None
    with pytest.raises(LeadershipLost):
        await a.task
    assert not a.acting
    assert a.periods[0][1] - started <= TIMING.renew_every + TIMING.retry_every + SLACK
    assert spec(api)["holderIdentity"] == "intruder"  # the leader never overwrote it
    assert all(
        r.data["spec"]["holderIdentity"] == a.elector.identity for r in sent(api, "a", "PUT")
    )


@pytest.mark.looptime
async def test_graceful_release_hands_over_at_once(api: LeaseKube, start: Start) -> None:
    a = await start("a")
    await eventually(lambda: a.acting)
    b = await start("b")
    await asyncio.sleep(20)
    assert a.task is not None
    a.terminated.set()  # SIGTERM: kopf stops, then the Lease is released
    await a.task
    released = sent(api, "a", "PUT")[-1].data["spec"]
    assert (released["holderIdentity"], released["leaseDurationSeconds"]) == ("", 1)
    await eventually(lambda: b.acting, within=30)
    assert b.periods[0][0] - a.periods[0][1] <= TIMING.retry_every * 1.2 + SLACK  # not 10-15 s
    assert spec(api)["holderIdentity"] == b.elector.identity
    assert spec(api)["leaseTransitions"] == 1
    never_two_at_once(a, b)


@pytest.mark.looptime
@pytest.mark.parametrize("stubborn", [False, True], ids=["kopf-stops", "kopf-cancelled"])
@pytest.mark.parametrize("how", ["hang", "refuse"])
async def test_a_leader_cut_off_from_the_api_stops_before_the_standby_takes_over(
    api: LeaseKube, start: Start, how: Any, stubborn: bool
) -> None:
    a = await start("a", stubborn=stubborn)
    await eventually(lambda: a.acting)
    b = await start("b")
    await asyncio.sleep(17)
    api.cut_off("a", how)
    cut = now()
    assert a.task is not None
    with pytest.raises(LeadershipLost):
        await a.task
    stopped = a.periods[0][1]
    # The last successful renewal began before the cut; the leader stops within the deadline
    # (and the grace for kopf) of it, before the standby may take over (15 s from seeing it).
    assert stopped - cut <= TIMING.renew_deadline + TIMING.stop_grace + SLACK
    await eventually(lambda: b.acting, within=30)
    assert b.periods[0][0] - cut >= TIMING.duration - TIMING.renew_every - SLACK  # waited it out
    never_two_at_once(a, b)
    assert spec(api)["holderIdentity"] == b.elector.identity


async def test_a_standby_answers_the_liveness_probe(api: LeaseKube, start: Start) -> None:
    api.put_lease(LEASE_NAMESPACE, LEASE, {"holderIdentity": "other", "leaseDurationSeconds": 15})
    url = f"http://127.0.0.1:{free_port()}/healthz"
    b = await start("b", liveness_url=url)
    await until_answered(url)
    assert not b.acting
    assert spec(api)["holderIdentity"] == "other"


# --- two operator processes -----------------------------------------------------------------------

MEMOSERVE = Path(sys.executable).parent / "memoserve"
CRDS = "apiextensions.k8s.io/v1/customresourcedefinitions"
ISVC_KIND = ("serving.memoserve.dev/v1alpha1", "InferenceService")


async def answers(url: str) -> bool:
    try:
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session, session.get(url) as r:
            return r.status == 200
    except aiohttp.ClientError:
        return False


async def operator_process(
    api: LeaseKube, tmp_path: Path, pod: str, lease_seconds: int
) -> tuple[asyncio.subprocess.Process, str]:
    """``memoserve operator`` as pod ``pod``, with a short lease; and its liveness URL."""
    liveness = f"http://127.0.0.1:{free_port()}/healthz"
    env = {key: value for key, value in os.environ.items() if not key.startswith("MEMOSERVE_")}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    env |= {
        "KUBECONFIG": str(write_kubeconfig(tmp_path / "kubeconfig", str(api.url))),
        "POD_NAME": pod,
        "POD_NAMESPACE": LEASE_NAMESPACE,
        "MEMOSERVE_OPERATOR_LIVENESS_URL": liveness,
        "MEMOSERVE_OPERATOR_LOG_FORMAT": "text",
        "MEMOSERVE_OPERATOR_LEASE_DURATION_SECONDS": str(lease_seconds),
        "MEMOSERVE_OPERATOR_LEASE_RETRY_SECONDS": "0.3",
    }
    process = await asyncio.create_subprocess_exec(
        str(MEMOSERVE),
        "operator",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    return process, liveness


async def until_answered(*urls: str, within: float = 30) -> None:
    async with asyncio.timeout(within):
        for url in urls:
            while True:
                if await answers(url):
                    break
                await asyncio.sleep(0.05)


def holder(api: LeaseKube) -> str:
    lease = api.lease(LEASE_NAMESPACE, LEASE)
    return str((lease or {}).get("spec", {}).get("holderIdentity") or "")


async def stop(process: asyncio.subprocess.Process) -> tuple[int | None, str]:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode, stderr.decode()[-3000:]


@pytest.mark.slow
async def test_two_operator_processes_one_active_one_standby(
    api: LeaseKube, tmp_path: Path
) -> None:
    declare_resources(api, extra=[CRDS])
    processes: list[asyncio.subprocess.Process] = []
    try:
        a, a_health = await operator_process(api, tmp_path, "op-a", lease_seconds=6)
        processes.append(a)
        await eventually(lambda: holder(api).startswith("op-a_"), within=30)
        b, b_health = await operator_process(api, tmp_path, "op-b", lease_seconds=6)
        processes.append(b)
        await until_answered(a_health, b_health)  # the leader's kopf, the standby's own
        await send(api, "POST", path(*ISVC_KIND), isvc_body(), "application/json")
        await eventually(lambda: "status" in api.objects[ISVC, NAMESPACE, "iris"], within=15)
        assert holder(api).startswith("op-a_")  # b stood by all along

        since = mark(api)
        code, stderr = await stop(a)
        assert code == 0, stderr
        puts = [r.data["spec"] for r in requests(api, since) if r.method == "PUT"]
        released = {"holderIdentity": "", "leaseDurationSeconds": 1}.items()
        assert any(released <= put.items() for put in puts)
        # Taken over at the standby's next try (0.3 s), well before the 6 s lease would expire.
        await eventually(lambda: holder(api).startswith("op-b_"), within=3)
        await until_answered(b_health)  # now kopf's (a moment's gap while it binds the port)
        code, stderr = await stop(b)
        assert code == 0, stderr
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()


@pytest.mark.slow
async def test_a_leader_process_that_cannot_renew_exits_1(api: LeaseKube, tmp_path: Path) -> None:
    declare_resources(api, extra=[CRDS])
    a, _ = await operator_process(api, tmp_path, "op-a", lease_seconds=3)
    try:
        await eventually(lambda: holder(api).startswith("op-a_"), within=30)
        await asyncio.sleep(1)  # renewing
        api.cut_off("", "refuse")  # every client without an X-Replica header: the process
        cut = now()
        _, stderr = await asyncio.wait_for(a.communicate(), 30)
        # 3 s lease: renew every 1 s, give up after 2 s, 0.5 s for kopf to stop; then the process
        # exits (the bounds of acting are asserted above, on looptime's clock).
        assert now() - cut < 10
        assert a.returncode == 1, stderr.decode()[-3000:]
        assert "lost lease" in stderr.decode()
    finally:
        if a.returncode is None:
            a.kill()
            await a.wait()
