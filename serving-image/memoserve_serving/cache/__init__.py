"""The answer cache: pure key derivation, a lean Redis client, fail-open cache-aside."""
