"""Condition bookkeeping: lastTransitionTime, the Ready summary, comparison without times."""

from __future__ import annotations

import datetime

import pytest

from memoserve_contract.resource.status import Condition, ConditionStatus, InferenceServiceStatus
from memoserve_operator.status.conditions import (
    comparable,
    merge_conditions,
    set_condition,
    summarize,
    timestamp,
)
from memoserve_operator.verdict import Verdict

T0, T1 = "2025-01-01T00:00:00Z", "2025-01-01T00:05:00Z"
TRUE, FALSE, UNKNOWN = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN


def cond(
    type_: str, status: ConditionStatus, reason: str = "R", time: str | None = T0
) -> Condition:
    return Condition(
        type=type_, status=status, reason=reason, last_transition_time=time, observed_generation=1
    )


@pytest.mark.parametrize(
    ("old", "verdict", "expected_time"),
    [
        ([], Verdict.true("ServingReady", "R"), T1),  # new condition
        ([cond("ServingReady", TRUE)], Verdict.true("ServingReady", "R"), T0),  # unchanged
        ([cond("ServingReady", TRUE)], Verdict.true("ServingReady", "Other", "m"), T0),  # reason
        ([cond("ServingReady", TRUE)], Verdict.false("ServingReady", "R"), T1),  # status changed
        ([cond("ServingReady", FALSE)], Verdict("ServingReady", UNKNOWN, "R"), T1),
        ([cond("ServingReady", TRUE, time=None)], Verdict.true("ServingReady", "R"), T1),
    ],
)
def test_last_transition_time_changes_only_with_status(
    old: list[Condition], verdict: Verdict, expected_time: str
) -> None:
    (new,) = set_condition(old, verdict, generation=2, now=T1)
    assert new.last_transition_time == expected_time
    assert (new.status, new.reason, new.message) == (
        verdict.status,
        verdict.reason,
        verdict.message,
    )
    assert new.observed_generation == 2


def test_set_condition_keeps_the_others_in_place() -> None:
    old = [cond("A", TRUE), cond("B", TRUE), cond("C", TRUE)]
    new = set_condition(old, Verdict.false("B", "Broken"), generation=1, now=T1)
    assert [(c.type, c.status) for c in new] == [("A", TRUE), ("B", FALSE), ("C", TRUE)]
    assert new[0] is old[0]


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (
            [Verdict.true("ServingReady", "ReplicasReady"), Verdict.true("CacheReady", "CacheOff")],
            (TRUE, "Ready", "2/2 ready"),
        ),
        (
            [Verdict.false("ServingReady", "PodsNotReady", "0/1"), Verdict.true("CacheReady", "X")],
            (FALSE, "PodsNotReady", "ServingReady: 0/1"),
        ),
        (
            [Verdict.true("ServingReady", "R"), Verdict("CacheReady", UNKNOWN, "Checking")],
            (UNKNOWN, "Checking", "CacheReady"),
        ),
        (
            [Verdict.false("ServingReady", "A", "a"), Verdict.false("IngressReady", "B", "b")],
            (FALSE, "A", "ServingReady: a"),  # the first part that is not ready speaks
        ),
    ],
)
def test_ready_summarizes_the_parts(
    parts: list[Verdict], expected: tuple[ConditionStatus, str, str]
) -> None:
    ready = summarize(parts, "2/2 ready")
    assert ready.type == "Ready"
    assert (ready.status, ready.reason, ready.message) == expected


def test_merge_puts_ready_first_and_drops_parts_that_no_longer_apply() -> None:
    old = [cond("Ready", FALSE), cond("IngressReady", FALSE), cond("ServingReady", FALSE)]
    parts = [Verdict.true("ServingReady", "ReplicasReady"), Verdict.true("CacheReady", "CacheOff")]
    new = merge_conditions(old, parts, ready_message="ok", generation=3, now=T1)
    assert [(c.type, c.status, c.last_transition_time) for c in new] == [
        ("Ready", TRUE, T1),
        ("ServingReady", TRUE, T1),
        ("CacheReady", TRUE, T1),
    ]
    again = merge_conditions(new, parts, ready_message="ok", generation=3, now="later")
    assert again == new


def test_statuses_that_differ_only_in_transition_times_compare_equal() -> None:
    a = InferenceServiceStatus(observed_generation=1, conditions=[cond("Ready", TRUE, time=T0)])
    b = InferenceServiceStatus(observed_generation=1, conditions=[cond("Ready", TRUE, time=T1)])
    c = InferenceServiceStatus(observed_generation=2, conditions=[cond("Ready", TRUE, time=T0)])
    assert comparable(a) == comparable(b)
    assert comparable(a) != comparable(c)
    assert comparable(None) == {}


def test_timestamps_are_utc_whole_seconds() -> None:
    tz = datetime.timezone(datetime.timedelta(hours=2))
    moment = datetime.datetime(2025, 1, 1, 2, 0, 0, 999999, tzinfo=tz)
    assert timestamp(moment) == "2025-01-01T00:00:00Z"
