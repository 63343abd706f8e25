"""The gRPC servers' tests run on each transport (settings.grpc_transport): the native one and
the grpc.aio fallback. A module opts in with ``pytestmark = pytest.mark.usefixtures(...)``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from memoserve_contract.settings import GrpcTransport
from tests.support import serving


@pytest.fixture(params=list(GrpcTransport), ids=str)
def grpc_transport(request: pytest.FixtureRequest) -> Iterator[GrpcTransport]:
    with serving.default_setting("grpc_transport", request.param):
        yield request.param
