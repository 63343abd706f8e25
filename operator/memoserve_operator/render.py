"""``memoserve render -f FILE``: every object the operator would apply, offline.

A file holds one or more InferenceServices (multi-document YAML). Each is checked as the API
server would check it (schema, then the CRD's CEL rules, same messages) and built with the same
pure builders the operator runs. Objects rendered from a file carry no ownerReferences: there is
no uid to point at until the InferenceService exists in a cluster.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_contract.resource.names import API_VERSION, KIND
from memoserve_operator import cel
from memoserve_operator.builders import build_all
from memoserve_operator.builders.meta import Object
from memoserve_operator.crd import open_api_schema
from memoserve_operator.settings import OperatorSettings


class RenderError(Exception):
    """Input that the API server would refuse, or that is not an InferenceService at all.

    ``str(error)`` is one line, fit for a terminal.
    """


def parse(document: Mapping[str, Any], *, namespace: str = "default") -> InferenceService:
    """Validate one InferenceService document like the API server does; RenderError if bad."""
    if document.get("apiVersion") != API_VERSION or document.get("kind") != KIND:
        found = f"{document.get('apiVersion')}/{document.get('kind')}"
        raise RenderError(f"expected apiVersion {API_VERSION} kind {KIND}, found {found}")
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    label = f'{KIND} "{name}"' if name else KIND
    body = dict(document)
    if isinstance(metadata, Mapping):
        body["metadata"] = {"namespace": namespace, **metadata}
    try:
        isvc = InferenceService.from_body(body)
    except ValidationError as exc:
        raise RenderError(f"{label}: {_first_error(exc)}") from None
    # The rules see the defaulted object, as in the API server (defaulting runs first).
    defaulted = {
        "metadata": {"name": isvc.name},
        "spec": isvc.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
    }
    if broken := cel.violations(open_api_schema(), defaulted):
        more = f" (and {len(broken) - 1} more)" if len(broken) > 1 else ""
        raise RenderError(f"{label}: {broken[0]}{more}")
    return isvc


def render_objects(
    text: str, settings: OperatorSettings, *, namespace: str = "default"
) -> list[Object]:
    """Every object for every InferenceService in a (multi-document) YAML text."""
    objects: list[Object] = []
    for document in _documents(text):
        objects += build_all(parse(document, namespace=namespace), settings)
    if not objects:
        raise RenderError("no InferenceService in the input")
    return objects


def parse_file(path: str | Path, *, namespace: str = "default") -> list[InferenceService]:
    """Every InferenceService in the YAML file ``path``, each checked as :func:`parse` does;
    RenderError (one line, starting with the path) for anything the API server would refuse."""
    text = _read(path)
    try:
        services = [parse(document, namespace=namespace) for document in _documents(text)]
    except RenderError as exc:
        raise RenderError(f"{path}: {exc}") from None
    if not services:
        raise RenderError(f"{path}: no InferenceService in the input")
    return services


def render(
    path: str | Path, settings: OperatorSettings | None = None, *, namespace: str = "default"
) -> str:
    """The objects for the InferenceServices in ``path``, as multi-document YAML."""
    text = _read(path)
    try:
        objects = render_objects(text, settings or OperatorSettings(), namespace=namespace)
    except RenderError as exc:
        raise RenderError(f"{path}: {exc}") from None
    return to_yaml(objects)


def _read(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RenderError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise RenderError(f"{path}: not UTF-8 text") from None


def to_yaml(objects: list[Object]) -> str:
    """Objects as multi-document YAML, keys in the order the builders wrote them."""
    output: str = yaml.dump_all(objects, Dumper=_Dumper, sort_keys=False, width=1000)
    return output


def _documents(text: str) -> Iterator[Mapping[str, Any]]:
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "cannot parse"
        raise RenderError(f"invalid YAML{where}: {problem}") from None
    for document in documents:
        if document is None:
            continue  # an empty document, e.g. after a trailing ---
        if not isinstance(document, Mapping):
            raise RenderError("every YAML document must be a mapping (an object)")
        yield document


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"])
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}" if where else f"{first['msg']}{more}"


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]  # PyYAML ships no type hints
    """Plain YAML: no &anchors/*aliases even where builders share a value."""

    def ignore_aliases(self, data: Any) -> bool:
        return True
