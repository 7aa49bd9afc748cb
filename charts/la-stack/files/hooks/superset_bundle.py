"""The starter bundle in Superset's export format: read from the ConfigMap, placeholders
filled, extra datasets written."""

from __future__ import annotations

import json
import os
import re
import uuid

from hooklib import fail

BUNDLE_ROOT = "la_stack_bundle"  # Superset strips the zip's top folder
PLACEHOLDER = re.compile(r'"\$\{([a-z_]+)\}"')
UUID_LINE = re.compile(r"^uuid:\s*([0-9a-f-]{36})\s*$", re.MULTILINE)
# Extra datasets get stable uuids derived from their table name.
DATASET_NAMESPACE = uuid.UUID("7d1e6c1a-3c4f-4a55-9a57-2b7f61f1f0d5")


def read_bundle(directory: str) -> dict[str, str]:
    """Every *.yaml below `directory`, by path relative to it (ConfigMap `..data` links skipped)."""
    files: dict[str, str] = {}
    for root, dirs, names in os.walk(directory, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".."))
        for name in sorted(names):
            if name.endswith(".yaml") and not name.startswith(".."):
                path = os.path.join(root, name)
                with open(path, encoding="utf-8") as handle:
                    files[os.path.relpath(path, directory).replace(os.sep, "/")] = handle.read()
    if "metadata.yaml" not in files or not any(p.startswith("databases/") for p in files):
        fail(f"{directory} is not a Superset bundle: metadata.yaml or databases/ is missing.")
    return files


def file_uuid(text: str, path: str) -> str:
    match = UUID_LINE.search(text)
    if not match:
        fail(f"the bundle file {path} has no uuid.")
    return match.group(1)


def fill(text: str, values: dict[str, str], path: str) -> str:
    """Replace `"${name}"` placeholders with JSON strings (valid YAML double-quoted scalars)."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            fail(f"the bundle file {path} has an unknown placeholder ${{{name}}}.")
        return json.dumps(values[name])

    return PLACEHOLDER.sub(one, text)


def extra_dataset(table: str, database_uuid: str) -> str:
    """A dataset without columns; Superset reads them from Elasticsearch afterwards."""
    dataset_uuid = uuid.uuid5(DATASET_NAMESPACE, table)
    return (
        f"table_name: {json.dumps(table)}\nmain_dttm_col: null\nschema: null\nsql: null\n"
        f"offset: 0\ncache_timeout: null\nparams: null\nextra: null\n"
        f"filter_select_enabled: true\nuuid: {dataset_uuid}\nmetrics:\n"
        "  - metric_name: count\n    verbose_name: Rows\n    metric_type: count\n"
        "    expression: COUNT(*)\ncolumns: []\nversion: 1.0.0\n"
        f"database_uuid: {database_uuid}\n"
    )
