"""``memoserve run -f FILE``: an InferenceService on this machine, as the cluster would run it.

``spec`` validates the file and derives the serving settings through the operator's own env
builder; ``cache`` picks the Redis (or the in-process stand-in); ``redis_server`` owns a
throwaway redis-server; ``banner`` says what runs and how to call it; ``runner`` ties them up.
"""

from __future__ import annotations


class RunError(Exception):
    """Something ``memoserve run`` cannot do with its input; the message is one line."""
