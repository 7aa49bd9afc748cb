"""Offline validation of rendered objects.

Built-in kinds are checked against the strict Kubernetes JSON schemas of the pinned
Kubernetes version (shipped inside the `kubernetes-validate` package); custom
resources against the openAPIV3Schema of their CRD, read from the CRD manifests.
An object whose schema cannot be found is an error, never a silent pass.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

from lastack.paths import crds_dir
from lastack.tools.toolchain import KUBERNETES_VERSION


class SchemaMissingError(LookupError):
    """No schema is known for an object's apiVersion and kind."""


class ObjectInvalidError(ValueError):
    """A rendered object does not match its schema."""


def _crd_to_jsonschema(schema: dict) -> dict:
    """Translate a structural openAPIV3Schema into draft-07 JSON Schema.

    Unknown fields are rejected where the CRD does not preserve them: the API
    server would prune them silently, which hides typos in values.
    """
    schema = copy.deepcopy(schema)

    def walk(node: dict) -> dict:
        if node.pop("nullable", False) and "type" in node:
            node["type"] = [node["type"], "null"]
        if node.pop("x-kubernetes-int-or-string", False):
            node.pop("type", None)
            node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        preserve = node.pop("x-kubernetes-preserve-unknown-fields", False)
        for key in [k for k in node if k.startswith("x-kubernetes-")]:
            node.pop(key)
        props = node.get("properties")
        if props:
            for child in props.values():
                walk(child)
            if "additionalProperties" not in node and not preserve:
                node["additionalProperties"] = False
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"])
        if isinstance(node.get("items"), dict):
            walk(node["items"])
        for combinator in ("allOf", "anyOf", "oneOf"):
            for child in node.get(combinator, []):
                walk(child)
        return node

    out = walk(schema)
    # The CRD schema describes apiVersion/kind/metadata loosely; metadata is checked by the API.
    out.setdefault("properties", {})["metadata"] = {"type": "object"}
    return out


@cache
def crd_schemas(directory: Path | None = None) -> dict[tuple[str, str], dict]:
    """{(apiVersion, kind): JSON schema} for every served version of every CRD file."""
    directory = directory or crds_dir()
    if not directory.is_dir():
        raise SchemaMissingError(
            f"CRD folder {directory} not found: set LA_STACK_CRDS_DIR to a folder of CRD "
            "manifests (ECK, Argo CD)")
    schemas: dict[tuple[str, str], dict] = {}
    for path in sorted(directory.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                if not version.get("served", True):
                    continue
                raw = version.get("schema", {}).get("openAPIV3Schema")
                if raw is None:
                    continue
                key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                schemas[key] = _crd_to_jsonschema(raw)
    return schemas


@cache
def _crd_validator(api_version: str, kind: str) -> jsonschema.Draft7Validator:
    schema = crd_schemas().get((api_version, kind))
    if schema is None:
        raise SchemaMissingError(
            f"no schema for {kind} ({api_version}): neither a Kubernetes {KUBERNETES_VERSION} "
            f"kind nor a CRD in {crds_dir()}")
    return jsonschema.Draft7Validator(schema)


def _describe(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')}/{meta.get('name')}"


def validate_object(obj: dict, kube_version: str = KUBERNETES_VERSION) -> None:
    """Raise ObjectInvalidError or SchemaMissingError unless `obj` matches its schema."""
    if "apiVersion" not in obj or "kind" not in obj:
        raise ObjectInvalidError(f"object without apiVersion/kind: {obj!r:.200}")
    try:
        kubernetes_validate.validate(obj, kube_version, strict=True)
        return
    except kubernetes_validate.SchemaNotFoundError:
        pass
    except kubernetes_validate.ValidationError as err:
        path = "/".join(str(p) for p in err.absolute_path)
        raise ObjectInvalidError(f"{_describe(obj)}: {err.message} (at /{path})") from None
    validator = _crd_validator(obj["apiVersion"], obj["kind"])
    errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        path = "/".join(str(p) for p in first.absolute_path)
        raise ObjectInvalidError(f"{_describe(obj)}: {first.message} (at /{path})")


def validate_objects(objects: Iterable[dict], kube_version: str = KUBERNETES_VERSION) -> None:
    for obj in objects:
        validate_object(obj, kube_version)
