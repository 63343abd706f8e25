"""The request's cache directives (HTTP's ``Cache-Control`` header, gRPC's ``cache-control``
metadata): ``no-cache`` skips the cache read, ``no-store`` the write."""

from __future__ import annotations


def cache_directives(value: bytes) -> tuple[bool, bool]:
    """(read, write) from a Cache-Control value."""
    tokens = {token.strip().lower() for token in value.split(b",")}
    return b"no-cache" not in tokens, b"no-store" not in tokens
