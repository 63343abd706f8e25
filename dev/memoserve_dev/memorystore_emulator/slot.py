"""One emulated instance and the redis-server process behind it."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path
from typing import Any

from google.cloud import redis_v1
from google.protobuf import timestamp_pb2  # type: ignore[import-untyped]

from memoserve_dev.memorystore_emulator.redis_config import server_config
from memoserve_dev.ports import free_port
from memoserve_dev.redis_server import RedisServer
from memoserve_dev.tls import TlsFiles, load_tls, make_tls

log = logging.getLogger(__name__)
Instance = redis_v1.Instance
Enums: Any = Instance  # proto-plus enums: members are ints to mypy


def copy_instance(instance: Instance) -> Instance:
    copy: Instance = Instance.deserialize(Instance.serialize(instance))
    return copy


def now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


def _certificate(tls: TlsFiles) -> redis_v1.TlsCertificate:
    create, expire = timestamp_pb2.Timestamp(), timestamp_pb2.Timestamp()
    create.FromDatetime(tls.not_before)
    expire.FromDatetime(tls.not_after)
    return redis_v1.TlsCertificate(
        serial_number=tls.serial_number,
        cert=tls.ca_pem,
        create_time=create,
        expire_time=expire,
        sha1_fingerprint=tls.sha1_fingerprint,
    )


class Slot:
    """An instance (the API's view) and its redis-server (AUTH, TLS, size, configs)."""

    def __init__(self, instance: Instance, auth_string: str) -> None:
        self.instance, self.auth_string = instance, auth_string
        self.process: RedisServer | None = None
        self.tls: TlsFiles | None = None
        self.busy = False  # an operation runs on it

    def workdir(self, root: Path) -> Path:
        digest = hashlib.sha256(self.instance.name.encode()).hexdigest()[:8]
        return root / f"{self.instance.name.rsplit('/', 1)[1]}-{digest}"

    async def start(self, root: Path, host: str) -> None:
        """Start redis-server as the instance says; fill in host, port and serverCaCerts."""
        instance, workdir = self.instance, self.workdir(root)
        tls_on = (
            instance.transit_encryption_mode == Enums.TransitEncryptionMode.SERVER_AUTHENTICATION
        )
        if tls_on and self.tls is None:  # the CA of an earlier run (--data-dir), or a new one
            label = instance.name.rsplit("/", 1)[1]
            self.tls = await asyncio.to_thread(load_tls, workdir / "tls")
            if self.tls is None:
                self.tls = await asyncio.to_thread(make_tls, workdir / "tls", host, label)
        port = instance.port or free_port(host)
        process = RedisServer(
            workdir,
            host=host,
            port=port,
            password=self.auth_string if instance.auth_enabled else None,
            tls=self.tls if tls_on else None,
            config=server_config(instance.memory_size_gb, dict(instance.redis_configs)),
        )
        await asyncio.to_thread(process.start)
        self.process = process
        instance.host, instance.port = host, port
        if tls_on and self.tls is not None:
            instance.server_ca_certs = [_certificate(self.tls)]
        if instance.read_replicas_mode == Enums.ReadReplicasMode.READ_REPLICAS_ENABLED:
            instance.read_endpoint, instance.read_endpoint_port = host, port

    async def restart(self, root: Path, host: str) -> None:
        """Stop and start again, on the same port if it can (else a new one, as after a
        failover)."""
        await self.stop()
        try:
            await self.start(root, host)
        except (RuntimeError, OSError):
            log.warning("%s: redis-server did not restart on its port", self.instance.name)
            self.instance.port = 0
            await self.start(root, host)

    async def stop(self) -> None:
        if self.process is not None:
            await asyncio.to_thread(self.process.stop)
            self.process = None
