"""manifests/argocd: the InferenceService health check (run in Lua 5.1, like Argo CD's
gopher-lua) in the layout Argo CD keeps upstream (resource_customizations/GROUP/KIND/health.lua,
health_test.yaml and testdata/), its argocd-cm installation, and the Application example."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import lupa.lua51 as lua51
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_contract.resource.status import InferenceServiceStatus

ROOT = Path(__file__).resolve().parents[2]
ARGOCD = ROOT / "manifests" / "argocd"
GROUP, KIND = "serving.memoserve.dev", "InferenceService"
CUSTOMIZATION = ARGOCD / "resource_customizations" / GROUP / KIND
HEALTH_LUA = CUSTOMIZATION / "health.lua"
HEALTH_KEY = f"resource.customizations.health.{GROUP}_{KIND}"
OPEN_LIBS_KEY = f"resource.customizations.useOpenLibs.{GROUP}_{KIND}"
STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}

# Loads the script the way Argo CD runs it (a chunk reading the global `obj`, returning `hs`), in an
# environment holding only what Argo CD's Lua VM offers, where reading an undefined global or
# assigning a global is an error (catches typos and leaked state between evaluations). Argo CD
# (util/lua/lua.go) always opens the base, table and (a safe) os library; the others (string, math)
# only for its built-in scripts and for argocd-cm scripts whose useOpenLibs key is "true".
SANDBOX = """
local script, open_libs = ...
local chunk, err = loadstring(script, "=health.lua")
if not chunk then error(err) end
local allowed = {
  ipairs = ipairs, pairs = pairs, next = next, type = type, tostring = tostring,
  tonumber = tonumber, select = select, unpack = unpack, error = error, pcall = pcall,
  table = table,
}
if open_libs then
  allowed.string = string
  allowed.math = math
end
return function(obj)
  local env = setmetatable({obj = obj}, {
    __index = function(_, name)
      local value = allowed[name]
      if value == nil then error("health.lua reads undefined global " .. tostring(name), 2) end
      return value
    end,
    __newindex = function(_, name)
      error("health.lua assigns global " .. tostring(name), 2)
    end,
  })
  setfenv(chunk, env)
  return chunk()
end
"""


class HealthCheck:
    """health.lua as a Python callable: InferenceService dict -> Argo CD health dict."""

    def __init__(self, script: str, *, open_libs: bool = True) -> None:
        self._lua = lua51.LuaRuntime(
            unpack_returned_tuples=True, register_eval=False, register_builtins=False
        )
        self._run = self._lua.execute(SANDBOX, script, open_libs)

    def __call__(self, resource: dict[str, Any]) -> dict[str, Any]:
        result = self._run(self._lua.table_from(resource, recursive=True))
        assert lua51.lua_type(result) == "table", f"health.lua returned {result!r}"
        return {key: result[key] for key in result}


@pytest.fixture(scope="module")
def health() -> HealthCheck:
    return HealthCheck(HEALTH_LUA.read_text())


def condition(type_: str, status: str, reason: str = "", message: str = "") -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2025-01-01T00:00:00Z",
    }


def isvc(
    *conditions: dict[str, Any], generation: int = 2, observed: int | None = 2
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "apiVersion": "serving.memoserve.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": "iris", "namespace": "ml", "generation": generation},
        "spec": {"model": {"uri": "gs://models/iris", "format": "sklearn"}},
        "status": {"conditions": list(conditions)},
    }
    if observed is not None:
        resource["status"]["observedGeneration"] = observed
    return resource


READY = condition("Ready", "True", "Ready", "2/2 replicas ready at http://34.1.2.3/")

CASES: list[tuple[str, dict[str, Any], str, list[str]]] = [
    (
        "no status yet",
        {
            "apiVersion": "serving.memoserve.dev/v1alpha1",
            "kind": "InferenceService",
            "metadata": {"name": "iris", "generation": 1},
        },
        "Progressing",
        ["operator"],
    ),
    (
        "status without observedGeneration",
        isvc(READY, observed=None),
        "Progressing",
        ["generation 2", "none"],
    ),
    ("ready and current", isvc(READY), "Healthy", ["2/2 replicas ready at http://34.1.2.3/"]),
    ("ready without a message", isvc(condition("Ready", "True")), "Healthy", ["Ready"]),
    (
        "ready, but for the previous spec",
        isvc(READY, generation=3, observed=2),
        "Progressing",
        ["generation 3", "observed: 2"],
    ),
    (
        "a Ready condition written for the previous spec",
        isvc({**READY, "observedGeneration": 1}, generation=2, observed=2),
        "Progressing",
        ["Ready condition of generation 2", "generation 1"],
    ),
    (
        "a Ready condition written for the current spec",
        isvc({**READY, "observedGeneration": 2}, generation=2, observed=2),
        "Healthy",
        ["2/2 replicas ready"],
    ),
    (
        "no Ready condition yet",
        isvc(condition("ServingReady", "True")),
        "Progressing",
        ["Ready condition"],
    ),
    (
        "Ready Unknown",
        isvc(condition("Ready", "Unknown", "Reconciling", "applying children")),
        "Progressing",
        ["Reconciling", "applying children"],
    ),
    (
        "Ready Unknown stays Progressing even with a failure-looking reason",
        isvc(condition("Ready", "Unknown", "ModelLoadFailed", "last attempt failed")),
        "Progressing",
        ["ModelLoadFailed"],
    ),
    (
        "Ready False with a failure reason",
        isvc(condition("Ready", "False", "ModelLoadFailed", "gs://models/iris: 403 Forbidden")),
        "Degraded",
        ["ModelLoadFailed", "gs://models/iris: 403 Forbidden"],
    ),
    (
        "a failing part explains Ready False",
        isvc(
            condition("Ready", "False", "ServingNotReady", "0/2 replicas ready"),
            condition(
                "ServingReady", "False", "CrashLoopBackOff", "container server restarted 5 times"
            ),
        ),
        "Degraded",
        ["ServingReady", "CrashLoopBackOff", "container server restarted 5 times"],
    ),
    (
        "a Google API refusal on the cache",
        isvc(
            condition("Ready", "False", "CacheNotReady", "waiting for the cache"),
            condition("CacheReady", "False", "PERMISSION_DENIED", "redis.instances.create denied"),
        ),
        "Degraded",
        ["CacheReady", "redis.instances.create denied"],
    ),
    (
        "waiting for Memorystore is progress, not failure",
        isvc(
            condition("Ready", "False", "CacheNotReady", "waiting for the cache"),
            condition("ServingReady", "True", "Available", "2/2"),
            condition("CacheReady", "False", "CacheCreating", "Memorystore instance is CREATING"),
        ),
        "Progressing",
        ["CacheNotReady", "Memorystore instance is CREATING"],
    ),
    (
        "a failure of the previous spec while the new one is not seen yet",
        isvc(condition("Ready", "False", "ModelLoadFailed", "bad uri"), generation=4, observed=3),
        "Progressing",
        ["generation 4"],
    ),
    (
        "Ready is the verdict: a failing optional part does not hide a ready service",
        isvc(READY, condition("IngressReady", "False", "IngressFailed", "no static IP")),
        "Healthy",
        ["2/2 replicas ready"],
    ),
    (
        "a True part with a failure-looking reason is not a failure",
        isvc(
            condition("Ready", "False", "Progressing", "rolling out"),
            condition("CacheReady", "True", "RecoveredFromError", "ok"),
        ),
        "Progressing",
        ["rolling out"],
    ),
]


@pytest.mark.parametrize(
    ("resource", "expected", "fragments"),
    [pytest.param(r, e, f, id=name) for name, r, e, f in CASES],
)
def test_health(
    health: HealthCheck, resource: dict[str, Any], expected: str, fragments: list[str]
) -> None:
    result = health(resource)
    assert result["status"] == expected, result
    for fragment in fragments:
        assert fragment in result["message"], result


def test_being_deleted_is_progressing(health: HealthCheck) -> None:
    resource = isvc(READY)
    resource["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    assert health(resource) == {"status": "Progressing", "message": "Deleting"}


def test_ready_again_after_a_failure_is_healthy_at_once(health: HealthCheck) -> None:
    """Never stuck on Progressing once Ready: the state after a failure is not remembered."""
    failed = isvc(condition("Ready", "False", "ModelLoadFailed", "403"), generation=5, observed=5)
    assert health(failed)["status"] == "Degraded"
    assert health(isvc(READY, generation=5, observed=5))["status"] == "Healthy"


@pytest.mark.parametrize(
    "status",
    [
        "not-a-map",
        [],
        {"conditions": "Ready"},
        {"conditions": {"Ready": "True"}},
        {"conditions": [None, 3, "x", {"type": 5, "status": ["True"]}]},
        {"observedGeneration": "abc", "conditions": [{"type": "Ready"}]},
        {"observedGeneration": None},
    ],
)
def test_malformed_status_never_errors(health: HealthCheck, status: Any) -> None:
    resource = {"metadata": {"generation": "2"}, "status": status}
    assert health(resource)["status"] in {"Progressing", "Degraded"}


def test_string_generations_compare_as_numbers(health: HealthCheck) -> None:
    resource = isvc(READY)
    resource["metadata"]["generation"] = "10"
    resource["status"]["observedGeneration"] = 9
    assert health(resource)["status"] == "Progressing"
    resource["status"]["observedGeneration"] = "10"
    assert health(resource)["status"] == "Healthy"


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.sampled_from(["", "True", "False", "Ready"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)
CONDITION = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["Ready", "ServingReady", "CacheReady"]) | JSON,
        "status": st.sampled_from(["True", "False", "Unknown"]) | JSON,
        "reason": st.sampled_from(["", "Failed", "ModelLoadFailed", "CacheCreating"]) | JSON,
        "message": st.text(max_size=5) | JSON,
    },
)
STATUS = JSON | st.fixed_dictionaries(
    {},
    optional={
        "observedGeneration": st.integers(0, 4) | JSON,
        "conditions": st.lists(CONDITION | JSON, max_size=4) | JSON,
    },
)
RESOURCE = st.fixed_dictionaries(
    {},
    optional={
        "metadata": st.fixed_dictionaries({}, optional={"generation": st.integers(0, 4) | JSON})
        | JSON,
        "status": STATUS,
    },
)


@settings(max_examples=400, deadline=None)
@given(resource=RESOURCE)
def test_any_shape_gets_a_health_and_a_message(resource: dict[str, Any]) -> None:
    result = _shared_health()(resource)
    assert result["status"] in {"Healthy", "Progressing", "Degraded"}
    assert isinstance(result["message"], str)


@settings(max_examples=200, deadline=None)
@given(
    others=st.lists(CONDITION, max_size=4),
    generation=st.integers(1, 50),
    lag=st.integers(0, 3),
)
def test_generation_and_ready_decide(others: list[Any], generation: int, lag: int) -> None:
    """Ready=True with the current generation is Healthy whatever else is reported;
    a generation the operator has not seen is never Healthy nor Degraded."""
    conditions = [c for c in others if c.get("type") != "Ready"] + [READY]
    result = _shared_health()(isvc(*conditions, generation=generation, observed=generation - lag))
    assert result["status"] == ("Healthy" if lag == 0 else "Progressing")


_HEALTH: list[HealthCheck] = []


def _shared_health() -> HealthCheck:
    # Hypothesis tests cannot take function-scoped fixtures; one runtime serves them all.
    if not _HEALTH:
        _HEALTH.append(HealthCheck(HEALTH_LUA.read_text()))
    return _HEALTH[0]


def test_sandbox_catches_a_script_that_leaks_a_global() -> None:
    leaky = HealthCheck("hs = {status = 'Healthy', message = ''}\nreturn hs\n")
    with pytest.raises(lua51.LuaError, match="assigns global hs"):
        leaky({})


# --- the upstream layout: health_test.yaml, as Argo CD's util/lua/health_test.go runs it ---------


def _documents(path: Path) -> Iterator[dict[str, Any]]:
    yield from (doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None)


def health_tests() -> list[dict[str, Any]]:
    [spec] = list(_documents(CUSTOMIZATION / "health_test.yaml"))
    assert list(spec) == ["tests"]
    return list(spec["tests"])


def _case_id(case: dict[str, Any]) -> str:
    return Path(case["inputPath"]).stem


@pytest.mark.parametrize("case", health_tests(), ids=_case_id)
def test_health_test_yaml(health: HealthCheck, case: dict[str, Any]) -> None:
    """Argo CD compares the whole HealthStatus (status and message) for equality."""
    assert set(case) == {"healthStatus", "inputPath"}
    assert set(case["healthStatus"]) <= {"status", "message"}
    resource = next(_documents(CUSTOMIZATION / case["inputPath"]))
    assert health(resource) == case["healthStatus"]


def test_health_test_yaml_covers_every_testdata_file_and_state() -> None:
    cases = health_tests()
    used = {case["inputPath"] for case in cases}
    files = {f"testdata/{p.name}" for p in (CUSTOMIZATION / "testdata").glob("*.yaml")}
    assert used == files, "every testdata file has a case in health_test.yaml, and only those"
    assert {case["healthStatus"]["status"] for case in cases} >= {
        "Healthy",
        "Progressing",
        "Degraded",
    }
    split = [case for case in cases if "split" in case["inputPath"]]
    assert {case["healthStatus"]["status"] for case in split} >= {"Healthy", "Degraded"}


@pytest.mark.parametrize(
    "path", sorted((CUSTOMIZATION / "testdata").glob("*.yaml")), ids=lambda p: p.stem
)
def test_testdata_are_inferenceservices_as_the_operator_writes_them(path: Path) -> None:
    """Argo CD asks for full objects with the full status the controller writes: each file
    parses as the CRD's model (spec fields are forbidden unless known) and its status holds
    only fields the operator writes."""
    [resource] = list(_documents(path))
    parsed = InferenceService.from_body(resource)
    assert (parsed.api_version, parsed.kind) == (resource["apiVersion"], resource["kind"])
    status = InferenceServiceStatus.model_validate(resource["status"])
    assert status.model_dump(mode="json", by_alias=True, exclude_unset=True) == resource["status"]
    if "split" in path.stem:
        assert parsed.spec.split


def test_layout_is_the_one_argo_cd_keeps_upstream() -> None:
    """resource_customizations/GROUP/KIND/{health.lua, health_test.yaml, testdata/}: the
    directory can be copied into argoproj/argo-cd as it is (nothing else in it)."""
    names = {p.name for p in CUSTOMIZATION.iterdir()}
    assert names == {"health.lua", "health_test.yaml", "testdata"}
    crd_file = ROOT / "crds" / "inferenceservice.yaml"
    [crd] = [d for d in _documents(crd_file) if d["kind"] == "CustomResourceDefinition"]
    assert (crd["spec"]["group"], crd["spec"]["names"]["kind"]) == (GROUP, KIND)


# --- installation through argocd-cm ---------------------------------------------------------------


def test_argocd_cm_patch_is_generated_from_health_lua() -> None:
    written = (ARGOCD / "argocd-cm-patch.yaml").read_text()
    generated = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "argocd-cm-patch.py")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert written == generated, (
        "argocd-cm-patch.yaml is stale: python3 scripts/argocd-cm-patch.py > "
        "manifests/argocd/argocd-cm-patch.yaml"
    )
    [patch] = list(_documents(ARGOCD / "argocd-cm-patch.yaml"))
    assert kubernetes_validate.validate(patch, "1.30", strict=True)
    assert (patch["kind"], patch["metadata"]["name"], patch["metadata"]["namespace"]) == (
        "ConfigMap",
        "argocd-cm",
        "argocd",
    )
    assert set(patch["data"]) == {HEALTH_KEY, OPEN_LIBS_KEY}
    assert patch["data"][HEALTH_KEY] == HEALTH_LUA.read_text()


@pytest.mark.parametrize("case", health_tests(), ids=_case_id)
def test_argocd_cm_install_grants_what_the_script_needs(case: dict[str, Any]) -> None:
    """An argocd-cm script runs without Lua's string and math libraries unless its useOpenLibs
    key is "true" (Argo CD's VM); health.lua uses string, so without the key every case that
    reaches a reason check would fail in a real Argo CD."""
    [patch] = list(_documents(ARGOCD / "argocd-cm-patch.yaml"))
    open_libs = patch["data"].get(OPEN_LIBS_KEY) == "true"
    health = HealthCheck(patch["data"][HEALTH_KEY], open_libs=open_libs)
    resource = next(_documents(CUSTOMIZATION / case["inputPath"]))
    assert health(resource) == case["healthStatus"]


def test_the_script_needs_open_libs() -> None:
    """Why the patch sets useOpenLibs: without the string library the check errors."""
    closed = HealthCheck(HEALTH_LUA.read_text(), open_libs=False)
    degraded = next(_documents(CUSTOMIZATION / "testdata" / "degraded.yaml"))
    with pytest.raises(lua51.LuaError, match="undefined global string"):
        closed(degraded)


# --- the Application example ----------------------------------------------------------------------

APPLICATION_SPEC_FIELDS = {"project", "source", "destination", "syncPolicy", "ignoreDifferences"}
SYNC_OPTIONS = {
    "CreateNamespace=true",
    "ServerSideApply=true",
    "SkipDryRunOnMissingResource=true",
    "PruneLast=true",
    "PrunePropagationPolicy=foreground",
    "RespectIgnoreDifferences=true",
}


def applications() -> dict[str, dict[str, Any]]:
    return {app["metadata"]["name"]: app for app in _documents(ARGOCD / "application.yaml")}


def test_applications_are_well_formed() -> None:
    apps = applications()
    assert set(apps) == {"memoserve-operator", "memoserve-services"}
    for app in apps.values():
        assert (app["apiVersion"], app["kind"]) == ("argoproj.io/v1alpha1", "Application")
        assert app["metadata"]["namespace"] == "argocd"
        assert set(app["spec"]) <= APPLICATION_SPEC_FIELDS
        source = app["spec"]["source"]
        assert source["repoURL"].endswith(".git")
        assert not Path(source["path"]).is_absolute()
        assert app["spec"]["destination"]["server"] == "https://kubernetes.default.svc"
        policy = app["spec"]["syncPolicy"]
        assert set(policy["automated"]) == {"prune", "selfHeal"}
        assert set(policy["syncOptions"]) <= SYNC_OPTIONS
        assert "ServerSideApply=true" in policy["syncOptions"]
        assert policy["retry"]["limit"] > 0


def test_operator_application_never_prunes_the_crd() -> None:
    app = applications()["memoserve-operator"]
    assert app["spec"]["syncPolicy"]["automated"]["prune"] is False
    assert "finalizers" not in app["metadata"]
    assert (ROOT / app["spec"]["source"]["path"] / "kustomization.yaml").is_file()


def test_services_application_syncs_the_examples() -> None:
    app = applications()["memoserve-services"]
    assert app["spec"]["source"]["path"] == "manifests/examples"
    options = app["spec"]["syncPolicy"]["syncOptions"]
    assert "SkipDryRunOnMissingResource=true" in options
    assert "CreateNamespace=true" in options
    examples = ROOT / "manifests" / "examples"
    resources = [doc for path in sorted(examples.glob("*.yaml")) for doc in _documents(path)]
    assert any(doc.get("kind") == "InferenceService" for doc in resources)
