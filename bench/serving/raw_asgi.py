"""The HTTP ceiling: a pure ASGI callable that reads the POST body and returns a fixed JSON body.

It does the least any v2 server must do per request (receive the whole body, send a JSON answer
of the size a small v2 infer response has), so its req/s under uvicorn is the ceiling a
Python model server on one core can reach. Any GET answers 200, so readiness checks work.

    uvicorn --app-dir bench/serving raw_asgi:app --loop uvloop --http httptools --no-access-log
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# The size and shape of memoserve's answer for the iris sample model (label + 3 probabilities).
BODY = (
    b'{"model_name":"iris","model_version":null,"id":null,"parameters":{},"outputs":['
    b'{"name":"label","datatype":"INT64","shape":[1],"data":[0]},'
    b'{"name":"probabilities","datatype":"FP32","shape":[1,3],'
    b'"data":[0.9795,0.0205,0.0000]}]}'
)
HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(BODY)).encode()),
]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:  # read the whole request body, as a real server must
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
