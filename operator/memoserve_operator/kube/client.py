"""A thin async Kubernetes client: server-side apply, get, list, delete, status patch.

Raw REST calls through a kubernetes_asyncio ``ApiClient`` (its config loaders handle in-cluster
service-account tokens, kubeconfig files and exec plugins alike); objects stay plain dicts.
API errors become the domain errors below, each naming the verb and the resource it was refused.
The client is opened on kopf's startup, kept in kopf's memo and closed on cleanup.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any, Literal, cast

import aiohttp
from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config import ConfigException, load_incluster_config, load_kube_config

from memoserve_contract.resource.names import GROUP, KIND, PLURAL, VERSION

Object = dict[str, Any]
Verb = Literal["get", "list", "patch", "delete"]
TIMEOUT_SECONDS = 30.0
# Connections to the API server (HTTP/1.1: one request each at a time). kubernetes_asyncio's
# default of 100 let a burst of reconciles open ~200 TLS connections, each holding a 256 KiB
# read buffer and OpenSSL state for as long as it lives; the API server is the bottleneck
# anyway, so more requests in flight than this only wait there instead of here.
CONNECTIONS = 16
USER_AGENT = "memoserve-operator"


@dataclass(frozen=True)
class ApiResource:
    """One REST resource: where its objects live and how RBAC names it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None, name: str | None = None, sub: str | None = None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        parts = [root]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        parts += [part for part in (name, sub) if part]
        return "/".join(parts)

    def rbac_name(self, sub: str | None = None) -> str:
        """As RBAC and kubectl spell it: deployments.apps, inferenceservices/status.serving..."""
        plural = f"{self.plural}/{sub}" if sub else self.plural
        return f"{plural}.{self.group}" if self.group else plural

    def __str__(self) -> str:
        return self.rbac_name()


def _resources(*items: ApiResource) -> dict[tuple[str, str], ApiResource]:
    return {(item.api_version, item.kind): item for item in items}


# Every resource the operator's own code calls (kopf's watches come on top: see rbac.yaml).
RESOURCES = _resources(
    ApiResource(GROUP, VERSION, PLURAL, KIND),
    ApiResource("", "v1", "serviceaccounts", "ServiceAccount"),
    ApiResource("", "v1", "secrets", "Secret"),
    ApiResource("", "v1", "services", "Service"),
    ApiResource("", "v1", "pods", "Pod"),
    ApiResource("apps", "v1", "deployments", "Deployment"),
    ApiResource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget"),
    ApiResource("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler"),
    ApiResource("cloud.google.com", "v1", "backendconfigs", "BackendConfig"),
    ApiResource("networking.gke.io", "v1", "managedcertificates", "ManagedCertificate"),
    ApiResource("networking.k8s.io", "v1", "ingresses", "Ingress"),
    ApiResource("networking.gke.io", "v1", "healthcheckpolicies", "HealthCheckPolicy"),
    ApiResource("networking.gke.io", "v1", "gcpbackendpolicies", "GCPBackendPolicy"),
    ApiResource("gateway.networking.k8s.io", "v1", "gateways", "Gateway"),
    ApiResource("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute"),
    ApiResource("monitoring.googleapis.com", "v1", "podmonitorings", "PodMonitoring"),
    ApiResource("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy"),
)


def resource_of(api_version: str, kind: str) -> ApiResource:
    return RESOURCES[(api_version, kind)]


class KubeError(Exception):
    """A refused or failed API call; ``str()`` names the verb, resource and object."""

    transient = False

    def __init__(self, status: int, verb: str, resource: str, where: str, message: str) -> None:
        self.status, self.verb, self.resource, self.where = status, verb, resource, where
        self.message = message
        super().__init__(f"{verb} {resource} {where}: {message} (HTTP {status})".strip())


class Unauthorized(KubeError):
    """401: the token expired or was revoked. The client re-reads a rotated service-account
    token by itself (kubernetes_asyncio's refresh hook), so a retry helps."""

    transient = True


class Forbidden(KubeError):
    """403: the operator's RBAC lacks this verb on this resource."""


class NotFound(KubeError):
    """404: no such object, or no such resource type (a CRD that is not installed)."""


class Conflict(KubeError):
    """409: a conflict that force=True did not settle (e.g. a uid precondition)."""


class Invalid(KubeError):
    """422: the API server (or a CRD's schema) refused the object."""


class Unavailable(KubeError):
    """5xx, 429 or no answer at all: waiting helps."""

    transient = True


_ERRORS: dict[int, type[KubeError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: Invalid,
}


def _error(exc: ApiException, verb: str, resource: str, where: str) -> KubeError:
    status = int(exc.status or 0)
    message = str(exc.reason or "")
    with contextlib.suppress(ValueError, AttributeError):
        message = json.loads(exc.body or "{}").get("message") or message
    cls = _ERRORS.get(status, Unavailable if status in (0, 429) or status >= 500 else KubeError)
    return cls(status, verb, resource, where, message)


async def load_configuration() -> Configuration:
    """In-cluster service account first, else the kubeconfig (as kubectl and kopf do)."""
    configuration = Configuration()
    try:
        load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except ConfigException:
        await load_kube_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = CONNECTIONS
    return configuration


class KubeClient:
    """The few calls the operator makes, on one ``ApiClient`` (one aiohttp session)."""

    def __init__(self, api: ApiClient) -> None:
        self._api = api
        api.user_agent = USER_AGENT  # names the operator in the API server's audit log

    @classmethod
    async def open(cls, configuration: Configuration | None = None) -> KubeClient:
        return cls(ApiClient(configuration or await load_configuration()))

    async def close(self) -> None:
        await self._api.close()

    async def get(self, resource: ApiResource, namespace: str, name: str) -> Object | None:
        """The object, or None when it does not exist (or its resource type does not)."""
        try:
            return await self._call("get", resource, namespace, name)
        except NotFound:
            return None

    async def list(self, resource: ApiResource, namespace: str, selector: str) -> list[Object]:
        """Objects matching a label selector; [] when the resource type is not installed."""
        try:
            found = await self._call("list", resource, namespace, query={"labelSelector": selector})
        except NotFound:
            return []
        return list(found.get("items") or [])

    async def apply(self, obj: Object, field_manager: str) -> Object:
        """Server-side apply: create or update the fields ``field_manager`` owns, forcing
        conflicts (the operator is the one authority on its children)."""
        resource = resource_of(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        return await self._call(
            "patch",
            resource,
            meta.get("namespace"),
            meta["name"],
            query={"fieldManager": field_manager, "force": "true"},
            body=obj,
            content_type="application/apply-patch+yaml",
        )

    async def delete(self, resource: ApiResource, namespace: str, name: str, uid: str) -> None:
        """Delete one object if it still is the one we saw (uid); gone already is fine."""
        body = {"propagationPolicy": "Background", "preconditions": {"uid": uid}}
        # Gone already, or replaced by a new object of the same name: not ours to delete.
        with contextlib.suppress(NotFound, Conflict):
            await self._call("delete", resource, namespace, name, body=body)

    async def patch_metadata(
        self, resource: ApiResource, namespace: str, name: str, metadata: Object
    ) -> Object:
        """JSON merge patch of metadata (finalizers, annotations); a resourceVersion in it
        makes the API server refuse (409) if the object changed since it was read."""
        return await self._call(
            "patch",
            resource,
            namespace,
            name,
            body={"metadata": metadata},
            content_type="application/merge-patch+json",
        )

    async def patch_status(
        self, resource: ApiResource, namespace: str, name: str, status: Object
    ) -> Object:
        """JSON merge patch of the status subresource (null removes a field)."""
        return await self._call(
            "patch",
            resource,
            namespace,
            name,
            sub="status",
            body={"status": status},
            content_type="application/merge-patch+json",
        )

    async def _call(
        self,
        verb: Verb,
        resource: ApiResource,
        namespace: str | None,
        name: str | None = None,
        *,
        sub: str | None = None,
        query: dict[str, str] | None = None,
        body: Object | None = None,
        content_type: str = "application/json",
    ) -> Object:
        method = "GET" if verb in ("get", "list") else verb.upper()
        where = f"{namespace}/{name}" if name else f"in {namespace}"
        label = str(resource) if not sub else resource.rbac_name(sub)
        try:
            result = await self._api.call_api(
                resource.path(namespace, name, sub),
                method,
                query_params=list((query or {}).items()),
                header_params={"Content-Type": content_type, "Accept": "application/json"},
                body=body,
                response_types_map={200: "object", 201: "object", 202: "object"},
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
                _request_timeout=TIMEOUT_SECONDS,
            )
        except ApiException as exc:
            raise _error(exc, verb, label, where) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise Unavailable(0, verb, label, where, repr(exc)) from None
        return cast(Object, result or {})
