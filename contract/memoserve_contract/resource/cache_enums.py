"""Enums that several of spec.cache's sources share (kept apart so that each source's module
can import them without importing the others)."""

from __future__ import annotations

import enum


class TransitEncryptionMode(enum.StrEnum):
    """In-transit encryption. The operator maps it to each API's own names (Memorystore for
    Redis and Valkey: SERVER_AUTHENTICATION / DISABLED or TRANSIT_ENCRYPTION_DISABLED; Redis
    Cluster: TRANSIT_ENCRYPTION_MODE_SERVER_AUTHENTICATION / TRANSIT_ENCRYPTION_MODE_DISABLED)."""

    SERVER_AUTHENTICATION = "SERVER_AUTHENTICATION"
    DISABLED = "DISABLED"


class DeletionPolicy(enum.StrEnum):
    DELETE = "Delete"
    RETAIN = "Retain"
