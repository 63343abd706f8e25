"""What a step concluded about one part of a service (serving, cache, ingress, autoscaling).

Steps return an ``*Outcome`` (``ReconcileOutcome``, ``CacheOutcome``, ``MemorystoreOutcome``);
the part of it that becomes one status condition is a ``Verdict``. Its own module, at the
bottom of the operator: the cache step makes verdicts and ``status`` turns them into conditions.
"""

from __future__ import annotations

from dataclasses import dataclass

from memoserve_contract.resource.status import ConditionStatus


@dataclass(frozen=True)
class Verdict:
    """What a reconcile concluded about one part; becomes one condition."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""

    @classmethod
    def true(cls, type_: str, reason: str, message: str = "") -> Verdict:
        return cls(type_, ConditionStatus.TRUE, reason, message)

    @classmethod
    def false(cls, type_: str, reason: str, message: str = "") -> Verdict:
        return cls(type_, ConditionStatus.FALSE, reason, message)

    @property
    def ok(self) -> bool:
        return self.status == ConditionStatus.TRUE
