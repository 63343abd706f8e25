"""The ASGI app pyvoy serves in grpc_transports.py: a fixed gRPC reply, grpc-status in trailers.

Reads the reply from ``$ECHO_REPLY_FILE`` (pyvoy imports the module by name).
"""

from __future__ import annotations

import os
from pathlib import Path

from grpc_transports_echo import asgi_app

app = asgi_app(Path(os.environ["ECHO_REPLY_FILE"]).read_bytes())
