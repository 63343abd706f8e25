"""The pure parts of the Valkey / Redis Cluster emulation: service connection policies and the
shared request rules."""

from __future__ import annotations

import pytest

from memoserve_dev.memorystore_emulator.faults import ApiError
from memoserve_dev.memorystore_emulator.psc import ServiceConnectionPolicies, network_path
from memoserve_dev.memorystore_emulator.sharded_validate import check_counts, update_fields

NETWORK = "projects/p/global/networks/vpc-a"


def test_any_network_has_every_policy_by_default() -> None:
    assert ServiceConnectionPolicies().covers(NETWORK, "gcp-memorystore", "us-central1")


@pytest.mark.parametrize(
    ("declared", "covered"),
    [
        ("vpc-a:gcp-memorystore:us-central1", True),  # a bare name: that network anywhere
        (f"{NETWORK}:gcp-memorystore:us-central1", True),
        ("projects/q/global/networks/vpc-a:gcp-memorystore:us-central1", False),
        ("vpc-a:gcp-memorystore-redis:us-central1", False),
        ("vpc-a:gcp-memorystore:europe-west1", False),
        ("vpc-b:gcp-memorystore:us-central1", False),
    ],
)
def test_strict_policies_cover_only_their_network_class_and_region(
    declared: str, covered: bool
) -> None:
    policies = ServiceConnectionPolicies(allow_any_network=False)
    policies.declare_spec(declared)
    assert policies.covers(NETWORK, "gcp-memorystore", "us-central1") is covered


def test_a_missing_policy_is_the_api_s_failed_precondition() -> None:
    policies = ServiceConnectionPolicies(allow_any_network=False)
    fault = policies.check("projects/p/locations/r/instances/i", "p", [NETWORK], "c", "r")
    assert fault is not None
    assert fault.code == "FAILED_PRECONDITION"
    assert fault.message == (
        'Invalid resource state for "projects/p/locations/r/instances/i": No service connection '
        f"policy is associated with project: p, network: {NETWORK}, service class: c, region: r"
    )


@pytest.mark.parametrize("spec", ["vpc-a", "vpc-a:gcp-memorystore", "::r", "a:b:"])
def test_a_policy_needs_network_class_and_region(spec: str) -> None:
    with pytest.raises(ValueError, match="NETWORK:SERVICE_CLASS:REGION"):
        ServiceConnectionPolicies().declare_spec(spec)


def test_network_paths() -> None:
    assert network_path("default", "p") == "projects/p/global/networks/default"
    assert network_path(NETWORK, "other") == NETWORK


def test_update_masks_name_one_scaling_dimension_at_a_time() -> None:
    updatable = {"shard_count": "shard_count", "replica_count": "replica_count", "labels": "labels"}
    assert update_fields(["shardCount", "labels"], updatable) == ["shard_count", "labels"]
    for paths, match in [
        ([], "at least one"),
        (["memory_size_gb"], "cannot be updated"),
        (["shard_count", "replica_count"], "only one of replica_count, shard_count"),
    ]:
        with pytest.raises(ApiError, match=match) as refused:
            update_fields(paths, updatable)
        assert refused.value.code == "INVALID_ARGUMENT"


@pytest.mark.parametrize(("shards", "replicas"), [(0, 0), (251, 0), (1, -1), (1, 3)])
def test_counts_out_of_range_are_refused(shards: int, replicas: int) -> None:
    with pytest.raises(ApiError, match="must be"):
        check_counts(shards, replicas, 2)
