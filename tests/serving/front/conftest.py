"""Fixtures shared by the cache front's tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.peers import PeerServer, misbehaving


@pytest.fixture
def misbehaving_upstream(tmp_path: Path) -> Iterator[Callable[..., PeerServer]]:
    """Start peer_scripts/v2_misbehaving.py in a mode (and seconds); stopped after the test."""
    started: list[PeerServer] = []

    def start(mode: str, seconds: float = 0.0) -> PeerServer:
        workdir = tmp_path / f"{mode}-{len(started)}"
        workdir.mkdir()
        server = misbehaving(workdir, mode, seconds).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
