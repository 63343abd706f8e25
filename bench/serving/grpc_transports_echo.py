"""One gRPC transport answering ModelInfer with a fixed, pre-serialized reply: its own cost.

    python bench/serving/grpc_transports_echo.py TRANSPORT PORT REPLY_FILE

Used by grpc_transports.py, one process per candidate, pinned to one core. The handler does
nothing (bytes in, the same bytes out), so what each process spends per call is the transport:
HTTP/2, gRPC framing and the trip into Python. Imports only the candidate's own library, so a
candidate can run from a scratch virtualenv of its own (``--python`` of grpc_transports.py).

TRANSPORT: ``aio`` (grpc.aio on uvloop, memoserve's before; ``aio-suspend`` and
``native-aio-suspend``: the handler suspends once before answering, as one awaiting Redis does),
``sync`` (grpcio's server, 4 threads), ``native-aio`` (pygrpc-native's grpc.aio-compatible server
on uvloop), ``native-front`` (pygrpc-native's low-level front, each call handed to the uvloop
loop as memoserve's handler would be), ``native-aio-io1`` (its aio server with one I/O thread
instead of two), ``grpclib`` (pure-Python HTTP/2); pyvoy serves
``asgi_app`` (pyvoy_echo_app.py).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

SERVICE = "inference.GRPCInferenceService"
METHOD = f"/{SERVICE}/ModelInfer"
THREADS = 4


def serve_aio(
    port: int, reply: bytes, native: bool, suspend: bool = False, io_threads: int = 2
) -> None:
    import asyncio

    import grpc  # type: ignore[import-untyped]
    import uvloop

    async def infer(request: bytes, context: Any) -> bytes:
        if suspend:  # one trip through the event loop, as a handler awaiting Redis makes
            await asyncio.sleep(0)
        return reply

    async def main() -> None:
        if native:
            import pygrpc_native.aio  # type: ignore[import-not-found]

            server = pygrpc_native.aio.Server(io_threads=io_threads)
        else:
            server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        handlers = {"ModelInfer": grpc.unary_unary_rpc_method_handler(infer)}
        server.add_registered_method_handlers(SERVICE, handlers)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    uvloop.run(main())


def serve_sync(port: int, reply: bytes) -> None:
    from concurrent import futures

    import grpc

    def infer(request: bytes, context: Any) -> bytes:
        return reply

    server = grpc.server(futures.ThreadPoolExecutor(THREADS), options=[("grpc.so_reuseport", 0)])
    handlers = {"ModelInfer": grpc.unary_unary_rpc_method_handler(infer)}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


def serve_native_front(port: int, reply: bytes) -> None:
    """The low-level API: a thread takes batches of calls, the event loop answers each in a
    coroutine (a cache hit awaits Redis, so memoserve's handler needs the loop)."""
    import asyncio
    import threading

    import uvloop
    from pygrpc_native import EVENT_CALL, NativeGrpcFront

    front = NativeGrpcFront(f"127.0.0.1:{port}", [(METHOD, False)])

    async def answer(call_id: int, payload: bytes) -> None:
        front.respond(call_id, reply)

    async def main() -> None:
        loop = asyncio.get_running_loop()

        tasks: set[asyncio.Task[None]] = set()

        def on_events(events: list[tuple[Any, ...]]) -> None:
            for kind, call_id, _, payload, _ in events:
                if kind == EVENT_CALL:
                    task = loop.create_task(answer(call_id, payload))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)

        def pump() -> None:
            while (events := front.recv_batch(64)) is not None:
                loop.call_soon_threadsafe(on_events, events)

        front.start()
        threading.Thread(target=pump, daemon=True).start()
        await asyncio.Event().wait()

    uvloop.run(main())


def serve_grpclib(port: int, reply: bytes) -> None:
    import grpclib.const  # type: ignore[import-not-found]
    import grpclib.server  # type: ignore[import-not-found]
    import uvloop

    class Bytes:  # grpclib's codec calls these on the message classes
        @staticmethod
        def FromString(data: bytes) -> bytes:  # noqa: N802
            return data

    class Codec(grpclib.encoding.base.CodecBase):  # type: ignore[misc]
        __content_subtype__ = "proto"

        def encode(self, message: Any, message_type: Any) -> bytes:
            return bytes(message)

        def decode(self, data: bytes, message_type: Any) -> bytes:
            return data

    class Echo:
        async def infer(self, stream: Any) -> None:
            await stream.recv_message()
            await stream.send_message(reply)

        def __mapping__(self) -> dict[str, Any]:
            return {
                METHOD: grpclib.const.Handler(
                    self.infer, grpclib.const.Cardinality.UNARY_UNARY, Bytes, Bytes
                )
            }

    async def main() -> None:
        import grpclib.encoding.base

        server = grpclib.server.Server([Echo()], codec=Codec())
        await server.start("127.0.0.1", port)
        await server.wait_closed()

    uvloop.run(main())


def asgi_app(reply: bytes) -> Any:
    """An ASGI app answering gRPC: length-prefixed reply, then grpc-status in trailers."""
    framed = b"\x00" + len(reply).to_bytes(4, "big") + reply
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"application/grpc")],
        "trailers": True,
    }
    body = {"type": "http.response.body", "body": framed, "more_body": False}
    trailers = {"type": "http.response.trailers", "headers": [(b"grpc-status", b"0")]}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send(start)
        await send(body)
        await send(trailers)

    return app


def main() -> int:
    transport, port, reply = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]).read_bytes()
    if transport in ("aio", "native-aio", "aio-suspend", "native-aio-suspend"):
        serve_aio(port, reply, transport.startswith("native"), transport.endswith("-suspend"))
    elif transport == "native-aio-io1":
        serve_aio(port, reply, native=True, io_threads=1)
    elif transport == "sync":
        serve_sync(port, reply)
    elif transport == "native-front":
        serve_native_front(port, reply)
    elif transport == "grpclib":
        serve_grpclib(port, reply)
    else:
        raise SystemExit(f"unknown transport {transport!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
