"""Ports for cluster-mode nodes: each also listens on port + 10000 (the cluster bus), and
redis-server refuses ports above 55535, which a free-port lookup (the ephemeral range) often
returns."""

from __future__ import annotations

import random
import socket

# Cluster-mode nodes also listen on port + 10000 (the cluster bus): ports below the ephemeral
# range a free-port lookup returns, so that both fit and are free.
PORT_RANGE = (20000, 32000)


def _free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def cluster_ports(host: str, count: int) -> list[int]:
    """``count`` ports that are free, each with its cluster bus port (+10000) free too."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randrange(*PORT_RANGE)
        if port not in ports and _free(host, port) and _free(host, port + 10000):
            ports.append(port)
    return ports
