"""An emulated instance's redis-server configuration, from Memorystore's fields.

``maxmemory`` from memorySizeGb (or the ``maxmemory-gb`` redisConfig); the redisConfigs that
redis-server takes as they are, passed through. AUTH and TLS are the launcher's own options
(``memoserve_dev.redis_server``).
"""

from __future__ import annotations

from collections.abc import Mapping

GIB = 1024**3
# Memorystore's redisConfigs that redis-server takes as they are (maxmemory-gb is converted).
PASSTHROUGH_CONFIGS = frozenset(
    {
        "maxmemory-policy",
        "notify-keyspace-events",
        "activedefrag",
        "lfu-decay-time",
        "lfu-log-factor",
        "maxmemory-clients",
        "stream-node-max-bytes",
        "stream-node-max-entries",
    }
)
SUPPORTED_CONFIGS = PASSTHROUGH_CONFIGS | {"maxmemory-gb"}


def server_config(memory_size_gb: int, configs: Mapping[str, str]) -> dict[str, str]:
    """redis-server options (without the dashes) for an instance of this size and config."""
    maxmemory = float(configs.get("maxmemory-gb", memory_size_gb)) * GIB
    options = {"maxmemory": str(int(maxmemory))}
    for key, value in sorted(configs.items()):
        if key in PASSTHROUGH_CONFIGS:
            options[key] = value
    return options
