"""Redis Cluster key slots: CRC16 (XMODEM) of the key, or of its hash tag, modulo 16384.

A hash tag is the part between the first ``{`` and the first ``}`` after it, when that part is
not empty: keys with the same tag live in the same slot, so one command may use them all (our
answer and its single-flight lock, see keys.py). ``binascii.crc_hqx`` is exactly Redis's
CRC16 (polynomial 0x1021, initial value 0, no reflection) and runs in C: a slot costs well
under a microsecond, which matters on the hit path.
"""

from __future__ import annotations

from binascii import crc_hqx

SLOT_COUNT = 16384
_SLOT_MASK = SLOT_COUNT - 1


def hash_tag(key: bytes) -> bytes:
    """The part of ``key`` that is hashed: its non-empty hash tag, else the whole key."""
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


def key_slot(key: bytes) -> int:
    """The cluster slot of ``key`` (what ``CLUSTER KEYSLOT`` answers)."""
    # hash_tag inlined: this runs on every hit, and a call costs as much as the CRC.
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1 : end]
    return crc_hqx(key, 0) & _SLOT_MASK
