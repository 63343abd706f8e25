"""What the Memorystore lifecycle (any engine) tells the reconcile (pure but for one memory):
the CacheReady verdicts and their reasons.

Reasons, as Argo CD's health check reads them (manifests/argocd/resource_customizations/
serving.memoserve.dev/InferenceService/health.lua):

- transient (Progressing): CacheCreating, CacheUpdating, CacheDeleting and the other states an
  instance passes through (CacheRepairing, CacheMaintenance, CacheFailingOver, ...), and API
  errors that pass (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, ...);
- needing a person (Degraded): CacheRecreateRequired, CacheNotOwned, CacheNotFound,
  CacheConfigError, ServiceConnectionPolicyMissing, and the API's PERMISSION_DENIED,
  RESOURCE_EXHAUSTED, INVALID_ARGUMENT, FAILED_PRECONDITION, UNAUTHENTICATED.
"""

from __future__ import annotations

from memoserve_contract.redis_endpoint import RedisEndpoint
from memoserve_contract.resource.status import CacheStatus, ConditionType
from memoserve_operator.cache.engine import Seen
from memoserve_operator.cache.outcome import CacheOutcome
from memoserve_operator.cache.pace import MemorystoreOutcome
from memoserve_operator.cache.record import Ref
from memoserve_operator.verdict import Verdict

CACHE = ConditionType.CACHE_READY
OWNED, EXISTING = "memorystore", "existingMemorystore"
CREATING, UPDATING = "CacheCreating", "CacheUpdating"
RECREATE_REQUIRED, NOT_OWNED = "CacheRecreateRequired", "CacheNotOwned"
NOT_FOUND, CONFIG_ERROR = "CacheNotFound", "CacheConfigError"
POLICY_MISSING = "ServiceConnectionPolicyMissing"
# Google's words for ready: Memorystore for Redis says READY, Valkey and Redis Cluster ACTIVE.
READY_STATES = frozenset({"READY", "ACTIVE"})
CREATING_STATE, DELETING_STATE = "CREATING", "DELETING"


def reachable(instance: Seen) -> bool:
    """Whether the instance has an endpoint the pods can use (it may still be UPDATING)."""
    return instance.state not in (CREATING_STATE, DELETING_STATE) and bool(instance.host)


def state_reason(state: str) -> str:
    """CacheUpdating, CacheRepairing, CacheFailingOver, ...: states that pass by themselves."""
    return "Cache" + "".join(part.capitalize() for part in state.split("_"))


class Judge:
    """Verdicts on instances; remembers the endpoint that last worked for each service, so
    that an API error never takes a working Redis away from the pods."""

    def __init__(self) -> None:
        self._endpoints: dict[str, tuple[str, RedisEndpoint]] = {}

    def forget(self, key: str) -> None:
        self._endpoints.pop(key, None)

    def failed(
        self,
        ref: Ref,
        source: str,
        reason: str,
        message: str,
        name: str | None,
        retryable: bool = True,
        usable: RedisEndpoint | None = None,
    ) -> MemorystoreOutcome:
        """A failure; pods keep the endpoint that last worked for this instance."""
        known = self._endpoints.get(ref.key)
        if usable is None and known is not None and known[0] == name:
            usable = known[1]
        status = CacheStatus(source=source, name=name, state="ERROR", message=message)
        if usable is not None:
            status = status.model_copy(update={"host": usable.host, "port": usable.port})
        outcome = CacheOutcome(Verdict.false(CACHE, reason, message), status, usable, not usable)
        return MemorystoreOutcome("failed", outcome, retryable)

    def serving(
        self,
        ref: Ref,
        source: str,
        instance: Seen,
        found: RedisEndpoint | None,
        reason: str,
        note: str,
        operation: str | None = None,
    ) -> MemorystoreOutcome:
        """The verdict on an instance as it is; ``found``: its endpoint, once it is
        ``reachable``."""
        status = CacheStatus(
            source=source,
            name=instance.name,
            state=instance.state,
            operation=operation,
            message=instance.status_message or None,
        )
        if found is None:
            message = f"{instance.name} is {instance.state or 'not ready'}"
            if instance.state == DELETING_STATE and not source.startswith("existing"):
                message += "; a new one is created once it is gone"
            verdict = Verdict.false(CACHE, state_reason(instance.state or CREATING_STATE), message)
            return MemorystoreOutcome("waiting", CacheOutcome(verdict, status, hold=True))
        self._endpoints[ref.key] = (instance.name, found)
        status = status.model_copy(update={"host": found.host, "port": found.port})
        where = f"{instance.name} at {found.url}"
        if instance.state not in READY_STATES:
            verdict = Verdict.false(
                CACHE, state_reason(instance.state), f"{where} is {instance.state}"
            )
            return MemorystoreOutcome("waiting", CacheOutcome(verdict, status, found))
        return MemorystoreOutcome(
            "ready", CacheOutcome(Verdict.true(CACHE, reason, f"{where} ({note})"), status, found)
        )
