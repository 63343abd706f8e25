"""The REST tests that run a real server run on each HTTP transport (settings.http_transport):
uvicorn and granian. A module opts in with ``pytestmark = pytest.mark.usefixtures(...)``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from memoserve_contract.settings import HttpTransport
from tests.support import serving


@pytest.fixture(params=list(HttpTransport), ids=str)
def http_transport(request: pytest.FixtureRequest) -> Iterator[HttpTransport]:
    transport: HttpTransport = request.param
    serving.HTTP_TRANSPORT["http_transport"] = transport
    try:
        yield transport
    finally:
        serving.HTTP_TRANSPORT.clear()
