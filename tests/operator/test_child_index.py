"""The ChildIndex: what the watches said, newest first, found by name or by owner label."""

from __future__ import annotations

from typing import Any

import pytest

from memoserve_operator.children.index import ChildIndex

MANAGED = {"app.kubernetes.io/managed-by": "memoserve-operator"}


def child(
    kind: str = "Service",
    name: str = "iris",
    *,
    rv: str = "10",
    uid: str = "u1",
    instance: str | None = "iris",
    namespace: str = "ml",
) -> dict[str, Any]:
    labels = MANAGED | ({"app.kubernetes.io/instance": instance} if instance else {})
    return {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid,
            "resourceVersion": rv,
            "labels": labels,
            "managedFields": [{"manager": "memoserve-operator"}],
        },
        "spec": {"rv": rv},
    }


@pytest.fixture
def index() -> ChildIndex:
    return ChildIndex(frozenset({"Service", "Deployment"}))


def test_an_event_is_found_by_name_without_managed_fields(index: ChildIndex) -> None:
    index.observe("ADDED", child())
    found = index.get("Service", "ml", "iris")
    assert found is not None
    assert found["spec"] == {"rv": "10"}
    assert "managedFields" not in found["metadata"]
    assert index.get("Service", "other", "iris") is None


@pytest.mark.parametrize(
    ("first", "second", "kept"),
    [
        (child(rv="10"), child(rv="11"), "11"),  # newer replaces
        (child(rv="11"), child(rv="10"), "11"),  # a late event does not undo a newer response
        (child(rv="11"), child(rv="5", uid="u2"), "5"),  # recreated: another uid wins
        (child(rv="x"), child(rv="y"), "y"),  # not integers: the latest word counts
    ],
)
def test_newest_version_wins(
    index: ChildIndex, first: dict[str, Any], second: dict[str, Any], kept: str
) -> None:
    index.remember(first)
    index.observe("MODIFIED", second)
    found = index.get("Service", "ml", "iris")
    assert found is not None
    assert found["spec"]["rv"] == kept


def test_deleted_is_forgotten_everywhere(index: ChildIndex) -> None:
    index.observe(None, child())
    index.observe("DELETED", child())
    assert index.get("Service", "ml", "iris") is None
    assert index.owned("Service", "ml", "iris") == []
    assert len(index) == 0


def test_owned_finds_by_instance_label_and_follows_relabelling(index: ChildIndex) -> None:
    index.remember(child(name="iris"))
    index.remember(child(name="iris-extra", uid="u3"))
    index.remember(child(name="other", uid="u4", instance="other"))
    index.remember(child(kind="Deployment", uid="u5"))
    index.remember(child(name="unlabelled", uid="u6", instance=None))
    assert [o["metadata"]["name"] for o in index.owned("Service", "ml", "iris")] == [
        "iris",
        "iris-extra",
    ]
    index.remember(child(name="iris-extra", uid="u3", rv="11", instance="other"))
    assert [o["metadata"]["name"] for o in index.owned("Service", "ml", "other")] == [
        "iris-extra",
        "other",
    ]
    assert [o["metadata"]["name"] for o in index.owned("Service", "ml", "iris")] == ["iris"]


def test_an_unwatched_kind_is_never_answered(index: ChildIndex) -> None:
    index.remember(child(kind="Secret", name="iris-redis"))
    assert index.get("Secret", "ml", "iris-redis") is None
