"""kmock's Kubernetes emulator, taught the little more the operator relies on, and a harness
that runs the real operator (kopf + memoserve's handlers) against it over real HTTP.

What the emulator adds:
- server-side apply: a PATCH with ``application/apply-patch+yaml`` creates a missing object
  (kmock alone answers 404); on an existing one kmock's merge applies. So a field left out of
  the next apply stays, and nobody owns a field: tests here assert what the operator sends, never
  what an apply does to the live object (that is tests/e2e/test_apply_semantics.py);
- label selectors on LIST (equality terms, as the operator sends them);
- JSON patches (kopf adds and removes its finalizer with them), turned into merge patches;
- a uid on every object created and a new resourceVersion on every write (kopf waits to see
  its own patches come back);
- ``refuse()``: answer a method on a resource with an API error, changing nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import kmock
import kopf
import pytest
import yaml
from kmock._internal.k8s import KubernetesObjectConflictError
from kubernetes_asyncio.config import kube_config

import memoserve_operator.handlers  # noqa: F401  # registers the handlers with kopf
from memoserve_operator.kube.client import RESOURCES, USER_AGENT, resource_of
from memoserve_operator.metrics import Metrics
from memoserve_operator.reconcile import Reconciler
from memoserve_operator.settings import OperatorSettings

APPLY = "application/apply-patch+yaml"
JSON_PATCH = "application/json-patch+json"
ISVC = "serving.memoserve.dev/v1alpha1/inferenceservices"
NAMESPACE = "ml"
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


class FakeKube(kmock.KubernetesEmulator):
    versions = itertools.count(1)

    def refuse(self, method: str, plural: str, status: int, message: str) -> None:
        """Answer every ``method`` on ``plural`` with an error, changing nothing."""
        self.__dict__.setdefault("refusals", {})[method, plural] = (status, message)

    async def _handle(self, request: Any) -> Any:
        """Writes (POST, PATCH) are stored here; reads and DELETE as kmock does them."""
        refusal = self.__dict__.get("refusals", {}).get(
            (str(request.method.value), request.resource.plural if request.resource else "")
        )
        if refusal is not None:
            raise kmock.KubernetesError(refusal[0], "Refused", refusal[1])
        if request.resource is None or request.method not in ("POST", "PATCH"):
            return await super()._handle(request)
        name = str(request.name or (request.data.get("metadata") or {}).get("name"))
        key: Any = (request.resource, request.namespace, name)
        event: dict[str, Any]
        async with self._lock:
            exists = key in self._objects and not self._objects[key].deleted
            content_type = request.headers.get("Content-Type", "")
            if request.method == "POST" or (not exists and content_type.startswith(APPLY)):
                if exists:
                    raise KubernetesObjectConflictError()
                obj = merge({"metadata": {"uid": str(uuid.uuid4())}}, request.data)
                obj = merge(obj, {"metadata": {"resourceVersion": str(next(self.versions))}})
                if key in self._objects:
                    self._objects[key].create(obj)
                else:
                    self._objects[key] = obj
                event = {"type": "ADDED", "object": self._objects[key].last.raw}
            elif not exists:
                raise kmock.KubernetesObjectNotFoundError()
            else:
                current = dict(self._objects[key].raw)
                changes = request.data
                if content_type.startswith(JSON_PATCH):
                    changes = merge_diff(current, json_patch(copy.deepcopy(current), changes))
                version = {"metadata": {"resourceVersion": str(next(self.versions))}}
                self._objects[key].patch(merge(changes, version))
                event = {"type": "MODIFIED", "object": self._objects[key].raw}
            await self._buses[request.resource].put(event)
        # Render the stored object (kmock's fallback reactions), skipping the emulator's own
        # bookkeeping, which knows neither apply nor JSON patches.
        response = await kmock.RawHandler._handle(self, request)
        meta = self._objects[key].raw.get("metadata", {}) if exists else {}
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            async with self._lock:  # the last finalizer is gone: the object goes too
                raw = self._objects[key].raw
                self._objects[key].delete()
                await self._buses[request.resource].put({"type": "DELETED", "object": raw})
        return response

    async def _serve_list(self, request: Any) -> Any:
        result: Any = await super()._serve_list(request)
        terms = [t.split("=", 1) for t in request.params.get("labelSelector", "").split(",") if t]
        result["items"] = [
            item
            for item in result["items"]
            if all(item.get("metadata", {}).get("labels", {}).get(k) == v for k, v in terms)
        ]
        return result


def json_patch(obj: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """RFC 6902 add / replace / remove (``test`` ops are not checked)."""
    for op in ops:
        *parents, last = [
            p.replace("~1", "/").replace("~0", "~") for p in op["path"][1:].split("/")
        ]
        target: Any = obj
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if op["op"] in ("add", "replace") and isinstance(target, list):
            index = len(target) if last == "-" else int(last)
            target[index : index + (op["op"] == "replace")] = [op["value"]]
        elif op["op"] in ("add", "replace"):
            target[last] = op["value"]
        elif op["op"] == "remove":
            del target[int(last) if isinstance(target, list) else last]
    return obj


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {**a, **{k: merge(a[k], v) if isinstance(a.get(k), dict) else v for k, v in b.items()}}


def merge_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch that turns ``old`` into ``new``."""
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(old.get(key), dict):
            if sub := merge_diff(old[key], value):
                patch[key] = sub
        elif old.get(key) != value or key not in old:
            patch[key] = value
    return patch


def declare_resources(api: Any, *, extra: Iterable[str] = ()) -> None:
    """Every resource the operator touches, plus what kopf needs to start."""
    info = api.ResourceInfo
    verbs = {"list", "watch", "get", "patch", "create", "delete"}
    for resource in RESOURCES.values():
        api.resources[f"{resource.api_version}/{resource.plural}"] = info(
            kind=resource.kind, singular=resource.kind.lower(), namespaced=True, verbs=verbs
        )
    api.resources["v1/namespaces"] = info(kind="Namespace", namespaced=False, verbs=verbs)
    api.resources["v1/events"] = info(kind="Event", namespaced=True, verbs={"create"})
    for name in extra:
        api.resources[name] = info(namespaced=False, verbs={"list", "watch", "get"})


def write_kubeconfig(path: Path, server: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "fake",
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "users": [{"name": "fake", "user": {"token": "fake-token"}}],
    }
    path.write_text(yaml.safe_dump(config))
    return path


def path(api_version: str, kind: str, name: str | None = None, sub: str | None = None) -> str:
    """The URL path of an object (or of its kind) in the test namespace."""
    return resource_of(api_version, kind).path(NAMESPACE, name, sub)


def key(api_version: str, kind: str) -> str:
    """How kmock names a resource: ``group/version/plural``."""
    resource = resource_of(api_version, kind)
    return f"{resource.api_version}/{resource.plural}"


def mark(api: Any) -> int:
    """The id the next request will get: ``writes(api, mark(api))`` sees only what follows."""
    return max((r.id for r in api), default=-1) + 1


def requests(api: Any, since: int = 0) -> list[Any]:
    return [r for r in api if r.id >= since]


def ours(request: Any) -> bool:
    """Sent by the operator's own client (not by kopf, not by the test)."""
    return bool(request.headers.get("User-Agent", "").startswith(USER_AGENT))


def writes(api: Any, since: int = 0) -> list[Any]:
    """The operator's own writes (kopf's annotation and finalizer patches left out)."""
    return [r for r in requests(api, since) if r.method in WRITES and ours(r)]


def summary(calls: Iterable[Any]) -> list[tuple[str, str]]:
    """(method, path[?kind of patch]) of each request: the shape of a conversation."""
    kinds = {APPLY: " apply", JSON_PATCH: " json-patch", "application/merge-patch+json": " merge"}
    return [
        (str(r.method.value), str(r.url.path) + kinds.get(r.headers.get("Content-Type", ""), ""))
        for r in calls
    ]


async def send(api: Any, method: str, path: str, body: Any = None, content_type: str = "") -> Any:
    """A request from someone else (kubectl, a controller), on a throwaway connection."""
    headers = {"Content-Type": content_type or "application/merge-patch+json"}
    connector = aiohttp.TCPConnector(force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.request(method, f"{api.url}{path}", headers=headers, json=body) as response,
    ):
        assert response.status < 300, await response.text()
        return await response.json()


async def settle(api: Any, quiet: float = 0.3, within: float = 10.0) -> None:
    """Until no request has come for ``quiet`` seconds (the operator is idle)."""
    async with asyncio.timeout(within):
        count = -1
        while True:
            if count == (count := len(list(api))):
                return
            await asyncio.sleep(quiet)


@dataclass
class Operator:
    api: Any
    reconciler: Reconciler


async def eventually(condition: Callable[[], object], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running_operator(
    api: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    settings: OperatorSettings,
    *,
    scanning: bool = False,
) -> AsyncIterator[Operator]:
    # kopf's login and the operator's client both read the kubeconfig (kubernetes_asyncio reads
    # $KUBECONFIG once, at import: point its default at ours).
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", str(api.url))
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    kopf_settings = kopf.OperatorSettings()
    kopf_settings.scanning.disabled = not scanning
    memo = kopf.Memo(settings=settings, metrics=Metrics())
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        kopf.operator(
            registry=kopf.get_default_registry(),
            settings=kopf_settings,
            clusterwide=True,
            standalone=True,
            stop_flag=stop,
            ready_flag=ready,
            memo=memo,
        )
    )
    await asyncio.wait_for(ready.wait(), 5)
    await eventually(lambda: "reconciler" in memo)
    watched = f"/apis/{ISVC.rsplit('/', 1)[0]}/inferenceservices"
    await eventually(lambda: any(r.params.get("watch") and watched in str(r.url) for r in api))
    try:
        yield Operator(api, memo.reconciler)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def isvc_body(name: str = "iris", generation: int = 1, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "serving.memoserve.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "uid": f"uid-{name}",
            "generation": generation,
        },
        "spec": {"model": {"uri": "gs://my-models/iris/", "format": "sklearn"}} | spec,
    }
