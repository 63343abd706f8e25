"""The whole operator (kopf, memoserve's handlers) against the fake Kubernetes API and the
Memorystore emulator: create -> ready -> Secret -> Deployment, deletion per deletionPolicy,
a refused create, and every call granted by the operator's ClusterRole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.memorystore.emulator_thread import EmulatorThread
from tests.memorystore.helpers import (
    INSTANCE,
    PARENT,
    condition,
    exists,
    memorystore_body,
    recorded,
    secret,
    settings_for,
)
from tests.operator.fake_api import (
    ISVC,
    FakeKube,
    declare_resources,
    eventually,
    key,
    path,
    running_operator,
    send,
    settle,
)
from tests.operator.test_rbac import OPERATOR_AGENTS, granted, needed

pytestmark = pytest.mark.kmock(cls=FakeKube)

ISVC_PATH = path("serving.memoserve.dev/v1alpha1", "InferenceService")


@pytest.fixture
def api(kmock: Any) -> Any:
    declare_resources(kmock)
    return kmock


def events(api: Any) -> list[tuple[str, str]]:
    return [(r.data["type"], r.data["reason"]) for r in api["post", api.resource("v1/events")]]


def gone(api: Any) -> bool:
    return not exists(api, ISVC, "iris")


async def test_create_ready_then_delete_waits_for_the_instance(
    api: Any, emulator: EmulatorThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_operator(api, tmp_path, monkeypatch, settings_for(emulator)):
        await send(api, "POST", ISVC_PATH, memorystore_body(), "application/json")
        await eventually(lambda: condition(api)[0] == "True", within=15)
        assert exists(api, key("apps/v1", "Deployment"), "iris")
        assert secret(api)["url"].startswith("rediss://127.0.0.1:")
        assert recorded(api) is not None
        await send(api, "DELETE", f"{ISVC_PATH}/iris")
        await eventually(lambda: gone(api), within=15)
        await settle(api)
    assert emulator.backend.list_instances(PARENT) == []
    assert emulator.calls("CreateInstance") == emulator.calls("DeleteInstance") == 1
    assert {("Normal", "MemorystoreCreate"), ("Normal", "MemorystoreDelete")} <= set(events(api))
    assert ("Normal", "MemorystoreDeleted") in events(api)
    # Every call of this life cycle is granted by manifests/base/rbac.yaml.
    operator = [r for r in api if r.headers.get("User-Agent", "").startswith(OPERATOR_AGENTS)]
    calls = {permission for request in operator for permission in needed(request)}
    assert not sorted(calls - granted())


async def test_retain_leaves_the_instance_and_says_so(
    api: Any, emulator: EmulatorThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_operator(api, tmp_path, monkeypatch, settings_for(emulator)):
        body = memorystore_body(deletionPolicy="Retain")
        await send(api, "POST", ISVC_PATH, body, "application/json")
        await eventually(lambda: condition(api)[0] == "True", within=15)
        await send(api, "DELETE", f"{ISVC_PATH}/iris")
        await eventually(lambda: gone(api), within=15)
        await settle(api)
    assert [i.name for i in emulator.backend.list_instances(PARENT)] == [INSTANCE]
    assert emulator.calls("DeleteInstance") == 0
    assert ("Normal", "MemorystoreRetained") in events(api)


async def test_a_refused_create_is_retried_without_a_crash_loop(
    api: Any, emulator: EmulatorThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.faults.fail_next("CreateInstance", "PERMISSION_DENIED", times=2)
    async with running_operator(api, tmp_path, monkeypatch, settings_for(emulator)):
        await send(api, "POST", ISVC_PATH, memorystore_body(), "application/json")
        await eventually(lambda: condition(api)[1] == "PERMISSION_DENIED", within=10)
        assert not exists(api, key("apps/v1", "Deployment"), "iris")
        await eventually(lambda: condition(api)[0] == "True", within=15)
        await settle(api)  # kopf starts the timer now: let it, before stopping
    assert emulator.calls("CreateInstance") == 3
    assert events(api).count(("Warning", "PERMISSION_DENIED")) == 1
