"""Fixtures of the Memorystore tests: the emulator (a thread of its own), and clients of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.memorystore.emulator_thread import EmulatorThread


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorThread]:
    running = EmulatorThread().start()
    yield running
    running.stop()
