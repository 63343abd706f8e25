"""The REST tests that run a real server run on each HTTP transport (settings.http_transport):
uvicorn and granian. A module opts in with ``pytestmark = pytest.mark.usefixtures(...)``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from memoserve_contract.settings import HttpTransport
from tests.support import serving


@pytest.fixture(params=list(HttpTransport), ids=str)
def http_transport(request: pytest.FixtureRequest) -> Iterator[HttpTransport]:
    with serving.default_setting("http_transport", request.param):
        yield request.param
