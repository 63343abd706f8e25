"""The emulator over REST (JSON), as google-cloud-redis's sync client with transport="rest" and
``curl`` call it, plus the admin endpoint for fault injection:

    GET    /v1/{parent}/instances                 POST /v1/{parent}/instances?instanceId=ID
    GET    /v1/{name}                             PATCH /v1/{name}?updateMask=a,b
    GET    /v1/{name}/authString                  POST /v1/{name}:upgrade
    DELETE /v1/{name}
    GET    /v1/{parent}/operations                GET  /v1/{parent}/operations/{id}
    GET|POST|DELETE /emulator/v1/faults           (see faults.Faults.apply)

Errors are Google's JSON error shape with the HTTP status of the gRPC code.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web
from google.cloud import redis_v1
from google.longrunning import operations_pb2  # type: ignore[import-untyped]
from google.protobuf import json_format  # type: ignore[import-untyped]

from memoserve_dev.memorystore_emulator.backend import Backend
from memoserve_dev.memorystore_emulator.faults import ApiError

FAULTS_PATH = "/emulator/v1/faults"
_LOCATION = r"projects/[^/]+/locations/[^/]+"
INSTANCE = re.compile(rf"^/v1/({_LOCATION}/instances/[^/:]+)(/authString|:upgrade)?$")
INSTANCES = re.compile(rf"^/v1/({_LOCATION})/instances$")
OPERATION = re.compile(rf"^/v1/({_LOCATION}/operations/[^/:]+)$")
OPERATIONS = re.compile(rf"^/v1/({_LOCATION})/operations$")
HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


def _message(message: Any) -> web.Response:
    text = json_format.MessageToJson(message) if hasattr(message, "DESCRIPTOR") else message
    return web.Response(text=text, content_type="application/json")


def _instance(instance: redis_v1.Instance) -> web.Response:
    return _message(redis_v1.Instance.to_json(instance, use_integers_for_enums=False))


def _error(exc: ApiError) -> web.Response:
    status = HTTP_STATUS.get(exc.code, 500)
    body = {"error": {"code": status, "message": exc.message, "status": exc.code}}
    return web.json_response(body, status=status)


async def _instance_body(request: web.Request) -> redis_v1.Instance:
    text = await request.text()
    try:
        found: redis_v1.Instance = redis_v1.Instance.from_json(
            text or "{}", ignore_unknown_fields=True
        )
        return found
    except (ValueError, json_format.ParseError) as exc:
        raise ApiError("INVALID_ARGUMENT", f"not an Instance: {exc}") from None


def make_app(backend: Backend) -> web.Application:
    async def dispatch(request: web.Request) -> web.Response:
        try:
            return await _route(backend, request)
        except ApiError as exc:
            return _error(exc)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app


async def _route(backend: Backend, request: web.Request) -> web.Response:
    path, method = request.path, request.method
    if path == FAULTS_PATH:
        return await _faults(backend, request)
    if match := INSTANCES.match(path):
        if method == "GET":
            found = backend.list_instances(match.group(1))
            return _message(redis_v1.ListInstancesResponse.to_json(
                redis_v1.ListInstancesResponse(instances=found), use_integers_for_enums=False
            ))  # fmt: skip
        if method == "POST":
            instance = await _instance_body(request)
            instance_id = request.query.get("instanceId", "")
            return _message(backend.create_instance(match.group(1), instance_id, instance))
    elif match := INSTANCE.match(path):
        name, suffix = match.group(1), match.group(2)
        if suffix == "/authString" and method == "GET":
            text = redis_v1.InstanceAuthString.to_json(
                redis_v1.InstanceAuthString(auth_string=backend.get_auth_string(name))
            )
            return _message(text)
        if suffix == ":upgrade" and method == "POST":
            body = json.loads(await request.text() or "{}")
            return _message(backend.upgrade_instance(name, str(body.get("redisVersion", ""))))
        if suffix is None and method == "GET":
            return _instance(backend.get_instance(name))
        if suffix is None and method == "PATCH":
            instance = await _instance_body(request)
            instance.name = name
            paths = [p for p in request.query.get("updateMask", "").split(",") if p]
            return _message(backend.update_instance(instance, paths))
        if suffix is None and method == "DELETE":
            return _message(backend.delete_instance(name))
    elif (match := OPERATION.match(path)) and method == "GET":
        return _message(backend.get_operation(match.group(1)))
    elif (match := OPERATIONS.match(path)) and method == "GET":
        found = backend.list_operations(match.group(1))
        return _message(operations_pb2.ListOperationsResponse(operations=found))
    raise ApiError("NOT_FOUND", f"{method} {path} is not part of the emulated API")


async def _faults(backend: Backend, request: web.Request) -> web.Response:
    faults = backend.faults
    if request.method == "POST":
        try:
            faults.apply(await request.json())
        except (ValueError, KeyError, TypeError) as exc:
            raise ApiError("INVALID_ARGUMENT", f"bad fault: {exc}") from None
    elif request.method == "DELETE":
        faults.reset()
    return web.json_response(faults.describe())
