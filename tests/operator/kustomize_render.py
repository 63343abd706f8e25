"""A tiny kustomize renderer for memoserve's own manifests (``kubectl kustomize`` need not exist).

It understands exactly the subset ``manifests/`` uses and refuses everything else, so a
kustomization that grows a feature this module does not know fails loudly instead of rendering
differently from kustomize:

- ``resources``: YAML files inside the kustomization's directory (kustomize's load restrictor
  refuses files outside it) and directories holding a kustomization, rendered recursively;
- ``patches`` with a ``path``: strategic-merge patches that only merge mappings (no lists);
- ``namespace``: set on every namespaced object (unknown kinds count as namespaced, as in
  kustomize); a Namespace object must already carry that name;
- ``images``: ``newName`` / ``newTag`` / ``digest`` for containers and init containers.

``tests/operator/test_manifests.py`` checks that this agrees with ``kubectl kustomize`` whenever
kubectl is installed.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_KEYS = frozenset({"apiVersion", "kind", "resources", "namespace", "images", "patches"})
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "PriorityClass",
        "StorageClass",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    }
)
# Where kustomize's image transformer looks (its default field specs, any kind).
POD_SPEC_PATHS = (
    ("spec",),
    ("spec", "template", "spec"),
    ("spec", "jobTemplate", "spec", "template", "spec"),
)


class RenderError(Exception):
    """The kustomization uses something this renderer does not support, or is invalid."""


def kustomization_file(directory: Path) -> Path:
    for name in KUSTOMIZATION_FILES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    raise RenderError(f"{directory} has no kustomization.yaml")


def render(directory: Path, *, omit: Collection[Path] = ()) -> list[Obj]:
    """Every object ``kubectl kustomize directory`` would print (in resource order).

    ``omit``: directories to leave out wherever a ``resources`` entry names them (used to check
    the operator's own objects while a referenced directory is still being written).
    """
    directory = directory.resolve()
    omitted = {p.resolve() for p in omit}
    spec = yaml.safe_load(kustomization_file(directory).read_text()) or {}
    unknown = set(spec) - SUPPORTED_KEYS
    if unknown:
        raise RenderError(f"{directory}: unsupported kustomization fields {sorted(unknown)}")

    objects: list[Obj] = []
    for entry in spec.get("resources") or []:
        path = (directory / entry).resolve()
        if path in omitted:
            continue
        if path.is_dir():
            objects.extend(render(path, omit=omitted))
        elif path.is_file():
            if not path.is_relative_to(directory):
                raise RenderError(
                    f"{directory}: file {entry} is outside the kustomization's directory "
                    "(kustomize's load restrictor refuses it; reference a directory instead)"
                )
            objects.extend(_load_documents(path))
        else:
            raise RenderError(f"{directory}: resource {entry} does not exist")

    for patch in spec.get("patches") or []:
        _apply_patch_file(directory, patch, objects)
    if spec.get("namespace"):
        _set_namespace(objects, spec["namespace"])
    for image in spec.get("images") or []:
        _set_image(objects, image)
    _check_unique(objects)
    return objects


def object_id(obj: Obj) -> tuple[str, str, str, str]:
    meta = obj.get("metadata") or {}
    return (obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])


def _load_documents(path: Path) -> Iterator[Obj]:
    for doc in yaml.safe_load_all(path.read_text()):
        if doc is None:
            continue
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            raise RenderError(f"{path}: a document is not a Kubernetes object")
        yield doc


def _apply_patch_file(directory: Path, patch: Any, objects: list[Obj]) -> None:
    if not isinstance(patch, dict) or set(patch) != {"path"}:
        raise RenderError(f"{directory}: only `patches: - path: FILE` is supported, got {patch}")
    for doc in _load_documents(directory / patch["path"]):
        meta = doc.get("metadata") or {}
        targets = [
            obj
            for obj in objects
            if obj["kind"] == doc["kind"]
            and obj["apiVersion"] == doc["apiVersion"]
            and obj["metadata"]["name"] == meta.get("name")
            and meta.get("namespace", obj["metadata"].get("namespace"))
            == obj["metadata"].get("namespace")
        ]
        if len(targets) != 1:
            raise RenderError(
                f"{patch['path']}: {len(targets)} objects match {doc['kind']}/{meta.get('name')}"
            )
        _merge_maps(targets[0], doc, where=patch["path"])


def _merge_maps(target: Obj, patch: Obj, *, where: str) -> None:
    for key, value in patch.items():
        if isinstance(value, list) or (isinstance(key, str) and key.startswith("$")):
            raise RenderError(f"{where}: only mappings can be patched here (field {key})")
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge_maps(target[key], value, where=where)
        else:
            target[key] = copy.deepcopy(value)


def _set_namespace(objects: list[Obj], namespace: str) -> None:
    for obj in objects:
        kind, meta = obj["kind"], obj["metadata"]
        if kind == "Namespace" and meta["name"] != namespace:
            raise RenderError(f"Namespace {meta['name']} would be renamed to {namespace}")
        if kind in ("RoleBinding", "ClusterRoleBinding"):
            for subject in obj.get("subjects") or []:
                if subject.get("kind") == "ServiceAccount" and not subject.get("namespace"):
                    raise RenderError(
                        f"{kind} {meta['name']}: give ServiceAccount subjects a namespace"
                    )
        if kind not in CLUSTER_SCOPED_KINDS:
            meta["namespace"] = namespace


def _set_image(objects: list[Obj], image: dict[str, str]) -> None:
    unknown = set(image) - {"name", "newName", "newTag", "digest"}
    if unknown:
        raise RenderError(f"images: unsupported fields {sorted(unknown)}")
    for obj in objects:
        for container in _containers(obj):
            name, tag, digest = _split_image(container.get("image", ""))
            if name != image["name"]:
                continue
            name = image.get("newName", name)
            if "digest" in image:
                container["image"] = f"{name}@{image['digest']}"
            elif "newTag" in image:
                container["image"] = f"{name}:{image['newTag']}"
            else:
                container["image"] = name + (f"@{digest}" if digest else f":{tag}" if tag else "")


def _containers(obj: Obj) -> Iterator[dict[str, Any]]:
    for path in POD_SPEC_PATHS:
        node: Any = obj
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            for field in ("containers", "initContainers"):
                yield from node.get(field) or []


def _split_image(image: str) -> tuple[str, str, str]:
    """``name[:tag][@digest]`` -> (name, tag, digest); a registry port is not a tag."""
    name, _, digest = image.partition("@")
    head, sep, tag = name.rpartition(":")
    if sep and "/" not in tag:
        return head, tag, digest
    return name, "", digest


def _check_unique(objects: list[Obj]) -> None:
    seen: set[tuple[str, str, str, str]] = set()
    for obj in objects:
        key = object_id(obj)
        if key in seen:
            raise RenderError(f"duplicate object {key}")
        seen.add(key)
