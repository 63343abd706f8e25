"""A v2 server that misbehaves on purpose: the cache front's upstream in tests of what the front
answers when its upstream is not ready, too slow, or not what its metadata says. Metadata and
readiness answer as any v2 server's (``x`` and ``y``, FP32 [-1, 4]: batchable);
``POST /v2/models/MODEL/infer`` sleeps ``SECONDS``, then:
- ``unavailable``: says 503 with ``Retry-After``;
- ``slow``: answers ``y = 2 * x + 1``;
- ``refuses``: the same, but 400 when any value is negative (a check that depends on values);
- ``pooled``: one row of ``y`` per call, whatever the rows sent (not row-wise after all).
Every infer call is counted in COUNT_FILE (so a test sees whether the front cached, forwarded,
or batched), and a line appended to COUNT_FILE.rows: its rows, and the calls in progress as it
came (itself included).

    python v2_misbehaving.py PORT MODEL COUNT_FILE MODE [SECONDS]

The standard library only: it runs under any interpreter, as its own process.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TENSOR = {"name": "x", "datatype": "FP32", "shape": [-1, 4]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the front's pool expects
    model = ""
    counts = Path()
    mode = "unavailable"
    seconds = 0.0
    lock = threading.Lock()
    active = 0  # infer calls in progress

    def do_GET(self) -> None:
        if self.path == "/v2":
            self.answer(200, {"name": "misbehaving", "version": "1", "extensions": []})
        elif self.path == f"/v2/models/{self.model}":
            metadata = {"name": self.model, "versions": ["1"], "platform": "test"}
            self.answer(200, metadata | {"inputs": [TENSOR], "outputs": [TENSOR | {"name": "y"}]})
        elif self.path in (f"/v2/models/{self.model}/ready", "/v2/health/ready"):
            self.answer(200, {})
        else:
            self.answer(404, {"error": f"no route {self.path}"})

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        tensor = request["inputs"][0]
        with self.lock:
            runs = int(self.counts.read_text() or 0) if self.counts.exists() else 0
            self.counts.write_text(str(runs + 1))
            Handler.active += 1
            with Path(f"{self.counts}.rows").open("a") as rows:
                rows.write(f"{tensor['shape'][0]} {Handler.active}\n")
        try:
            self.infer(tensor)
        finally:
            with self.lock:
                Handler.active -= 1

    def infer(self, tensor: dict[str, Any]) -> None:
        if self.mode == "unavailable":
            self.answer(503, {"error": "warming up"}, (("Retry-After", "7"),))
            return
        time.sleep(self.seconds)
        if self.mode == "refuses" and any(value < 0 for value in tensor["data"]):
            self.answer(400, {"error": "x must not be negative"})
            return
        y = [2 * value + 1 for value in tensor["data"]]
        shape = tensor["shape"]
        if self.mode == "pooled":
            y, shape = y[:4], [1, 4]
        output = {"name": "y", "datatype": "FP32", "shape": shape, "data": y}
        self.answer(200, {"model_name": self.model, "outputs": [output]})

    def answer(self, status: int, document: Any, headers: tuple[tuple[str, str], ...] = ()) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # the base's parameter names
        pass  # quiet: the test reads the count file, not a log


if __name__ == "__main__":
    port, Handler.model, Handler.counts = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    Handler.mode = sys.argv[4]
    Handler.seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
