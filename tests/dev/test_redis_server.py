"""The one redis-server launcher (``memoserve run``, the Memorystore emulator, the tests)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from memoserve_dev.ports import accepts, free_port, wait_for_port
from memoserve_dev.redis_server import RedisServer, RedisServerError
from memoserve_dev.tls import TlsFiles


def test_plain_server_answers_and_stops(tmp_path: Path) -> None:
    with RedisServer(tmp_path) as server:
        assert server.cli("PING") == "PONG"
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        assert server.cli("CONFIG", "GET", "save") == "save"  # no persistence
    assert not accepts("127.0.0.1", server.port)
    assert server.process is None


def test_auth_tls_and_config(tmp_path: Path, tls_files: TlsFiles) -> None:
    config = {"maxmemory": "2mb", "maxmemory-policy": "allkeys-lru"}
    with RedisServer(tmp_path, password="pw", tls=tls_files, config=config) as server:
        assert server.url == f"rediss://:pw@127.0.0.1:{server.port}/0"
        assert server.cli("PING") == "PONG"  # redis-cli over TLS with AUTH
        assert server.cli("CONFIG", "GET", "maxmemory-policy").splitlines() == [
            "maxmemory-policy",
            "allkeys-lru",
        ]
        assert server.cli("CONFIG", "GET", "port").splitlines() == ["port", "0"]  # TLS only


def test_a_port_taken_before_start_is_replaced(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    chosen = server.port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", chosen))
        squatter.listen()
        server.start()
        try:
            assert server.port != chosen
            assert server.cli("PING") == "PONG"
        finally:
            server.stop()


def test_a_fixed_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        server = RedisServer(tmp_path, port=port)
        with pytest.raises(
            RedisServerError, match=rf"exited at start: .*Failed listening on port {port}"
        ):
            server.start()
    assert server.process is None


def test_a_refused_option_names_the_log_line(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, config={"maxmemory-policy": "sometimes"})
    with pytest.raises(RedisServerError, match=r"redis-server exited at start: .*must be one of"):
        server.start()


def test_kill_then_start_comes_back_on_the_same_port(tmp_path: Path) -> None:
    with RedisServer(tmp_path) as server:
        port = server.port
        server.cli("SET", "k", "v")
        server.kill()
        assert not server.running
        server.start()
        assert server.port == port
        assert server.cli("GET", "k") == ""  # a crash loses what was in memory


def test_pause_hangs_and_stop_still_works(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    server.pause()
    with socket.create_connection(("127.0.0.1", server.port), timeout=1) as conn:
        conn.sendall(b"PING\r\n")
        conn.settimeout(0.3)
        with pytest.raises(TimeoutError):
            conn.recv(16)
    server.stop()  # a paused server is woken to be stopped, not left behind
    assert not accepts("127.0.0.1", server.port)


def test_wait_for_port_times_out_on_a_closed_port() -> None:
    with pytest.raises(TimeoutError, match="nothing listens"):
        wait_for_port(free_port(), timeout=0.1)
