"""What the Valkey and Redis Cluster backend (:mod:`.managed`) is told about each API, and what
it keeps per instance or cluster."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from memoserve_dev.memorystore_emulator.nodes import Nodes, NodeSpec
from memoserve_dev.tls import TlsFiles


class Flavor(Protocol):
    """What differs between the two APIs (messages, fields, rules, names)."""

    collection: str  # "instances" or "clusters"
    kind: str  # "Instance" or "Cluster": in method names
    ca_method: str  # the RPC that returns the CA
    service_class: str  # the PSC service class
    types: ModuleType  # the API's types (google.cloud.memorystore_v1, redis_cluster_v1)
    message: Any  # the proto-plus Instance or Cluster
    metadata: Any  # the API's OperationMetadata

    def check(self, resource: Any, resource_id: str | None) -> None: ...
    def defaults(self, resource: Any, project: str, region: str) -> None: ...
    def update_fields(self, paths: list[str], current: Any, candidate: Any) -> list[str]: ...
    def networks(self, resource: Any) -> list[str]: ...
    def spec(self, resource: Any) -> NodeSpec: ...
    def tls(self, resource: Any) -> bool: ...
    def show(self, resource: Any, address: str, port: int) -> None: ...


@dataclass
class Managed:
    resource: Any  # the API's view
    workdir: Path
    nodes: Nodes | None = None
    tls: TlsFiles | None = None
    busy: bool = False  # an operation runs on it
