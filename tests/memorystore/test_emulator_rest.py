"""The emulator through google-cloud-redis's sync client over REST (anonymous credentials,
api_endpoint pointed at it), then redis-py to the host and port it returned."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from google.api_core import exceptions
from google.api_core.client_options import ClientOptions
from google.api_core.future.polling import DEFAULT_POLLING
from google.auth.credentials import AnonymousCredentials
from google.cloud import redis_v1
from google.protobuf import field_mask_pb2
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.memorystore.command import emulator_command
from tests.memorystore.emulator_thread import EmulatorThread

PARENT = "projects/p/locations/us-central1"
FAST = DEFAULT_POLLING.with_delay(initial=0.05, maximum=0.2)  # the emulator is quick
Instance = redis_v1.Instance


@pytest.fixture
def client(emulator: EmulatorThread) -> redis_v1.CloudRedisClient:
    return redis_v1.CloudRedisClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options=ClientOptions(api_endpoint=emulator.rest_url),
    )


def create(client: redis_v1.CloudRedisClient, instance_id: str, **fields: object) -> Instance:
    spec = {"tier": Instance.Tier.BASIC, "memory_size_gb": 1} | fields
    operation = client.create_instance(
        parent=PARENT, instance_id=instance_id, instance=Instance(**spec)
    )
    return operation.result(timeout=20, polling=FAST)


def connect(**options: object) -> redis.Redis:
    """No retries, a short timeout: failures show at once."""
    return redis.Redis(socket_timeout=2, retry=Retry(NoBackoff(), 0), **options)


def ca_file(tmp_path: Path, instance: Instance) -> str:
    path = tmp_path / "ca.crt"
    path.write_text("".join(cert.cert for cert in instance.server_ca_certs))
    return str(path)


def test_create_get_list_and_use_a_plain_instance(client: redis_v1.CloudRedisClient) -> None:
    created = create(
        client, "plain", labels={"team": "ml"}, redis_configs={"maxmemory-policy": "allkeys-lru"}
    )
    assert created.state == Instance.State.READY
    assert (created.host, created.redis_version) == ("127.0.0.1", "REDIS_7_0")
    assert created.authorized_network == "projects/p/global/networks/default"
    assert not created.server_ca_certs
    found = client.get_instance(name=f"{PARENT}/instances/plain")
    assert (found.port, dict(found.labels)) == (created.port, {"team": "ml"})
    assert [i.name for i in client.list_instances(parent=PARENT)] == [found.name]
    with connect(host=found.host, port=found.port) as r:
        assert r.ping()
        assert r.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}
        assert r.config_get("maxmemory")["maxmemory"] == str(1024**3)


def test_auth_and_tls_are_real(client: redis_v1.CloudRedisClient, tmp_path: Path) -> None:
    created = create(
        client,
        "secure",
        auth_enabled=True,
        transit_encryption_mode=Instance.TransitEncryptionMode.SERVER_AUTHENTICATION,
    )
    [cert] = created.server_ca_certs
    assert cert.cert.startswith("-----BEGIN CERTIFICATE-----")
    assert cert.sha1_fingerprint
    auth = client.get_instance_auth_string(name=created.name).auth_string
    assert auth
    with connect(
        host=created.host,
        port=created.port,
        password=auth,
        ssl=True,
        ssl_ca_certs=ca_file(tmp_path, created),
    ) as r:
        assert r.set("k", "v")
        assert r.get("k") == b"v"
    with (
        pytest.raises(redis.AuthenticationError),
        connect(
            host=created.host, port=created.port, ssl=True, ssl_ca_certs=ca_file(tmp_path, created)
        ) as r,
    ):
        r.ping()
    with (
        pytest.raises(redis.ConnectionError),
        connect(host=created.host, port=created.port) as r,
    ):
        r.ping()  # TLS only: no plaintext port


def test_update_with_a_mask_upgrade_and_operations(
    client: redis_v1.CloudRedisClient, emulator: EmulatorThread
) -> None:
    created = create(client, "resize", redis_version="REDIS_6_X")
    change = Instance(name=created.name, memory_size_gb=2, display_name="ignored: not in the mask")
    mask = field_mask_pb2.FieldMask(paths=["memory_size_gb"])
    updated = client.update_instance(update_mask=mask, instance=change).result(
        timeout=20, polling=FAST
    )
    assert (updated.memory_size_gb, updated.display_name, updated.port) == (2, "", created.port)
    with connect(host=updated.host, port=updated.port) as r:
        assert r.config_get("maxmemory")["maxmemory"] == str(2 * 1024**3)
    upgraded = client.upgrade_instance(name=created.name, redis_version="REDIS_7_2").result(
        timeout=20
    )
    assert upgraded.redis_version == "REDIS_7_2"
    with pytest.raises(exceptions.BadRequest, match="cannot upgrade"):
        client.upgrade_instance(name=created.name, redis_version="REDIS_6_X")
    with pytest.raises(exceptions.BadRequest, match="cannot be updated"):
        client.update_instance(
            update_mask=field_mask_pb2.FieldMask(paths=["tier"]), instance=change
        )
    operations = list(client.list_operations({"name": PARENT}).operations)
    assert len(operations) == 3
    assert all(op.done for op in operations)
    assert client.get_operation({"name": operations[0].name}).done
    assert emulator.calls("UpdateInstance") == 2


def test_delete_stops_redis_server(client: redis_v1.CloudRedisClient) -> None:
    created = create(client, "gone")
    client.delete_instance(name=created.name).result(timeout=20, polling=FAST)
    with pytest.raises(exceptions.NotFound):
        client.get_instance(name=created.name)
    with (
        pytest.raises(redis.ConnectionError),
        connect(host=created.host, port=created.port) as r,
    ):
        r.ping()


def test_requests_are_checked_like_the_api_does(client: redis_v1.CloudRedisClient) -> None:
    with pytest.raises(exceptions.BadRequest, match="instance_id"):
        create(client, "Not_Valid")
    with pytest.raises(exceptions.BadRequest, match="tier is required"):
        client.create_instance(parent=PARENT, instance_id="x", instance=Instance(memory_size_gb=1))
    with pytest.raises(exceptions.BadRequest, match="label"):
        create(client, "labels", labels={"Team": "ML"})
    with pytest.raises(exceptions.BadRequest, match="replica_count"):
        create(client, "replicas", replica_count=2)
    create(client, "twice")
    with pytest.raises(exceptions.Conflict):
        create(client, "twice")
    with pytest.raises(exceptions.NotFound):
        client.get_instance(name=f"{PARENT}/instances/nope")


def test_injected_faults(client: redis_v1.CloudRedisClient, emulator: EmulatorThread) -> None:
    emulator.faults.fail_next("CreateInstance", "PERMISSION_DENIED")
    with pytest.raises(exceptions.Forbidden, match=r"redis\.instances\.create"):
        create(client, "denied")
    emulator.faults.fail_next("CreateInstance", "RESOURCE_EXHAUSTED")
    with pytest.raises(exceptions.TooManyRequests, match="Quota"):
        create(client, "quota")
    emulator.faults.fail_next_operation("create", "INTERNAL", "no capacity in us-central1-a")
    operation = client.create_instance(
        parent=PARENT,
        instance_id="broken",
        instance=Instance(tier=Instance.Tier.BASIC, memory_size_gb=1),
    )
    with pytest.raises(exceptions.InternalServerError, match="no capacity"):
        operation.result(timeout=20, polling=FAST)
    with pytest.raises(exceptions.NotFound):  # a failed create leaves nothing behind
        client.get_instance(name=f"{PARENT}/instances/broken")
    assert create(client, "denied").state == Instance.State.READY  # each fault once


def test_admin_endpoint_sets_faults_and_delays(emulator: EmulatorThread) -> None:
    import httpx

    url = f"{emulator.rest_url}/emulator/v1/faults"
    answer = httpx.post(
        url, json={"method": "GetInstance", "code": "UNAVAILABLE", "times": 2, "readyDelay": 5}
    )
    assert answer.json()["calls"] == {"GetInstance": ["UNAVAILABLE", "UNAVAILABLE"]}
    assert emulator.faults.ready_delay == 5
    assert httpx.post(url, json={"method": "GetInstance", "code": "NOPE"}).status_code == 400
    assert httpx.delete(url).json()["calls"] == {}


def test_instances_outlive_an_emulator_restart_with_a_data_dir(tmp_path: Path) -> None:
    first = EmulatorThread(tmp_path / "data").start()
    options = ClientOptions(api_endpoint=first.rest_url)
    client = redis_v1.CloudRedisClient(
        credentials=AnonymousCredentials(), transport="rest", client_options=options
    )
    created = create(
        client,
        "kept",
        auth_enabled=True,
        transit_encryption_mode=Instance.TransitEncryptionMode.SERVER_AUTHENTICATION,
    )
    auth = client.get_instance_auth_string(name=created.name).auth_string
    first.stop()
    second = EmulatorThread(tmp_path / "data").start()
    try:
        instance = second.backend.get_instance(created.name)
        assert instance.state == Instance.State.READY
        assert instance.server_ca_certs[0].cert == created.server_ca_certs[0].cert  # same CA
        ca = ca_file(tmp_path, instance)
        with connect(
            host=instance.host, port=instance.port, password=auth, ssl=True, ssl_ca_certs=ca
        ) as r:
            assert r.ping()
    finally:
        second.stop()


def test_the_command_serves_rest() -> None:
    with emulator_command() as (rest, _):
        options = ClientOptions(api_endpoint=rest)
        client = redis_v1.CloudRedisClient(
            credentials=AnonymousCredentials(), transport="rest", client_options=options
        )
        assert list(client.list_instances(parent=PARENT)) == []
        assert create(client, "cli").state == Instance.State.READY
