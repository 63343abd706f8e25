"""``memoserve dev memorystore-emulator`` as a process of its own, for the tests of the command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def emulator_command(*options: str) -> Iterator[tuple[str, str]]:
    """The command on free ports with ``options``; yields its REST URL and gRPC target."""
    process = subprocess.Popen(
        [
            sys.executable,
            *("-c", "from memoserve_cli.main import main; main()"),
            *("dev", "memorystore-emulator", "--port", "0", "--ready-delay", "0.1"),
            *options,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "gRPC 127.0.0.1:" in line, line
        rest = line.split("REST ", 1)[1].split(",", 1)[0]
        grpc_target = line.split("gRPC ", 1)[1].split(" ", 1)[0]
        yield rest, grpc_target
    finally:
        process.terminate()
        assert process.wait(10) == 0
