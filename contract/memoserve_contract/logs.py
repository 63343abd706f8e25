"""Process-wide logging: JSON lines (for Cloud Logging) or plain text (for a terminal)."""

from __future__ import annotations

import logging
import sys

from memoserve_contract.settings import LogFormat

# kopf passes its settings object and a skip flag as extras of every per-object record; neither
# is data, and its settings cannot be serialised at all (it holds a queue): every such record
# failed to log, with a traceback on stderr each time. Its ``k8s_ref`` (the object) is kept.
UNLOGGED_EXTRAS = ("settings", "k8s_skip")


def configure_logging(level: str, fmt: LogFormat) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt is LogFormat.JSON:
        from pythonjsonlogger.core import RESERVED_ATTRS
        from pythonjsonlogger.json import JsonFormatter

        # Cloud Logging reads "severity" and "message".
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"levelname": "severity", "asctime": "time"},
                reserved_attrs=[*RESERVED_ATTRS, *UNLOGGED_EXTRAS],
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
