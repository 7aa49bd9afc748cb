"""values.schema.json against the chart's values files, and against bad values through Helm."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from lastack.chart.render import HelmFailedError, render_chart
from lastack.paths import CHART_DIR, VALUES_DIR

HELMS = ["helm3", "helm4"]
OVERLAYS = sorted(VALUES_DIR.glob("*.yaml")) + sorted((CHART_DIR / "ci").glob("*-values.yaml"))


@cache
def chart_schema() -> dict:
    return json.loads((CHART_DIR / "values.schema.json").read_text())


@cache
def default_values() -> dict:
    return yaml.safe_load((CHART_DIR / "values.yaml").read_text())


def coalesce(base: Any, overlay: Any) -> Any:
    """Helm's merge of user values onto defaults: maps merge, a null deletes, the rest replaces."""
    if not (isinstance(base, dict) and isinstance(overlay, dict)):
        return copy.deepcopy(overlay)
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = coalesce(merged.get(key), value)
    return merged


def schema_errors(values: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(chart_schema())
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(values)]


def subschemas(schema: Any, where: str = "#") -> Iterator[tuple[str, dict]]:
    """Every sub-schema, with a JSON-pointer-ish location, for the quality checks."""
    if isinstance(schema, dict):
        yield where, schema
        for key, value in schema.items():
            if key in {"properties", "definitions", "$defs", "patternProperties"}:
                for name, sub in value.items():
                    yield from subschemas(sub, f"{where}/{key}/{name}")
            elif key in {"allOf", "anyOf", "oneOf", "items"} and isinstance(value, list):
                # `items` as a list is a tuple schema: one sub-schema per position.
                for i, sub in enumerate(value):
                    yield from subschemas(sub, f"{where}/{key}/{i}")
            elif key in {"items", "additionalProperties", "additionalItems", "not", "if",
                         "then", "else", "contains", "propertyNames"}:
                yield from subschemas(value, f"{where}/{key}")


class TestValuesFilesValidate:
    """The shipped values files satisfy the schema (as Helm merges them)."""

    def test_should_accept_the_defaults(self):
        assert schema_errors(default_values()) == []

    @pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: f"{p.parent.name}/{p.name}")
    def test_should_accept_each_overlay(self, overlay: Path):
        values = coalesce(default_values(), yaml.safe_load(overlay.read_text()) or {})
        assert schema_errors(values) == []


class TestSchemaQuality:
    """The schema matches values.yaml and stays self-contained."""

    def test_should_be_a_valid_draft07_schema(self):
        jsonschema.Draft7Validator.check_schema(chart_schema())
        assert chart_schema()["$schema"] == "http://json-schema.org/draft-07/schema#"

    def test_should_declare_exactly_the_top_level_keys_of_values(self):
        strict = copy.deepcopy(chart_schema())
        strict["minProperties"] = len(strict["properties"])
        jsonschema.validate(default_values(), strict, cls=jsonschema.Draft7Validator)
        assert set(chart_schema()["properties"]) == set(default_values())

    def test_should_declare_global_as_an_open_object(self):
        assert chart_schema()["additionalProperties"] is False
        global_ = chart_schema()["properties"]["global"]
        assert global_["type"] == "object"
        assert global_.get("additionalProperties", True) is True

    def test_should_keep_subchart_sections_open(self):
        meta = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
        for dep in meta.get("dependencies", []):
            section = chart_schema()["properties"][dep.get("alias") or dep["name"]]
            assert section.get("additionalProperties", True) is True, dep["name"]

    def test_should_have_only_local_refs(self):
        refs = [(where, sub["$ref"]) for where, sub in subschemas(chart_schema()) if "$ref" in sub]
        assert [r for r in refs if not r[1].startswith("#")] == []

    def test_should_validate_every_example_and_default_against_its_subschema(self):
        """What the schema itself offers a user (the defaults a UI fills in, the examples it
        shows) must be values the schema accepts."""
        found = [(where, sub, [*sub.get("examples", []), *(
            [sub["default"]] if "default" in sub else [])])
            for where, sub in subschemas(chart_schema())]
        assert any(offered for _, _, offered in found), "the schema offers no default at all"
        for where, sub, offered in found:
            for value in offered:
                errors = list(jsonschema.Draft7Validator(sub).iter_errors(value))
                assert not errors, f"{where}: {value!r}: {errors[0].message}"

    def test_should_describe_every_top_level_key(self):
        properties = chart_schema()["properties"]
        undescribed = [k for k, v in properties.items() if not v.get("description")]
        assert undescribed == []


# (id, values given to Helm, the key whose name Helm's message must contain)
INVALID_CASES: list[tuple[str, dict, str]] = [
    ("production-shape-on-one-node",
     {"eck-elasticsearch": {"podDisruptionBudget": {"spec": {"maxUnavailable": 1}},
                            "nodeSets": [{"name": "default", "count": 1}]}}, "nodeSets"),
    ("typo-in-top-level-subchart-key", {"ralhp": {"enabled": True}}, "ralhp"),
    ("typo-in-top-level-own-key", {"hook": {"backoffLimit": 1}}, "hook"),
    ("typo-in-nested-own-key", {"preflight": {"requireEckAPI": False}}, "requireEckAPI"),
    ("preflight-not-boolean", {"preflight": {"requireEckApi": "yes"}}, "requireEckApi"),
    ("global-registry-not-string", {"global": {"imageRegistry": 5}}, "imageRegistry"),
    ("global-pull-secrets-not-list", {"global": {"imagePullSecrets": "regcred"}},
     "imagePullSecrets"),
    ("global-pull-secret-without-name", {"global": {"imagePullSecrets": [{"secret": "x"}]}},
     "imagePullSecrets"),
    ("hook-image-tag-bad-pattern", {"hooks": {"image": {"tag": "5.0.1 beta"}}}, "tag"),
    ("hook-image-digest-not-sha256", {"hooks": {"image": {"digest": "latest"}}}, "digest"),
    ("superset-image-digest-short", {"superset": {"image": {"digest": "sha256:ab"}}}, "digest"),
    ("hook-pull-policy-unknown", {"hooks": {"image": {"pullPolicy": "Sometimes"}}},
     "pullPolicy"),
    ("hook-image-repository-not-string", {"hooks": {"image": {"repository": 42}}}, "repository"),
    ("hook-image-key-typo", {"hooks": {"image": {"pullpolicy": "Always"}}}, "pullpolicy"),
    ("hook-deadline-below-minimum", {"hooks": {"deadlineSeconds": 10}}, "deadlineSeconds"),
    ("hook-deadline-not-integer", {"hooks": {"deadlineSeconds": "600"}}, "deadlineSeconds"),
    ("hook-backoff-negative", {"hooks": {"backoffLimit": -1}}, "backoffLimit"),
    ("hook-job-annotations-not-map", {"hooks": {"jobAnnotations": ["a"]}}, "jobAnnotations"),
    ("hook-tolerations-not-list", {"hooks": {"tolerations": {"key": "x"}}}, "tolerations"),
    ("hook-node-selector-not-map", {"hooks": {"nodeSelector": "linux"}}, "nodeSelector"),
    ("hook-cpu-not-quantity", {"hooks": {"resources": {"requests": {"cpu": True}}}}, "cpu"),
    ("es-index-uppercase", {"elasticsearch": {"index": "Statements"}}, "index"),
    ("es-roles-secret-not-string", {"elasticsearch": {"rolesSecret": 1}}, "rolesSecret"),
    ("es-user-typo", {"elasticsearch": {"users": {"writter": {"username": "x"}}}}, "writter"),
    ("es-username-not-string", {"elasticsearch": {"users": {"writer": {"username": 42}}}},
     "username"),
    ("es-generated-secret-needs-name",
     {"elasticsearch": {"users": {"reader": {"secretName": ""}}}}, "secretName"),
    ("es-existing-secret-bad-name",
     {"elasticsearch": {"users": {"bootstrap": {"existingSecret": "Not_A_Name"}}}},
     "existingSecret"),
    ("es-bootstrap-enabled-not-boolean", {"elasticsearch": {"bootstrap": {"enabled": "true"}}},
     "enabled"),
    ("lrs-mbox-without-mailto",
     {"lrs": {"accounts": {"moodle": {"mbox": "moodle@example.org"}}}}, "mbox"),
    ("lrs-scope-unknown", {"lrs": {"accounts": {"moodle": {"scopes": ["example_scope"]}}}},
     "scopes"),
    ("lrs-scopes-empty", {"lrs": {"accounts": {"admin": {"scopes": []}}}}, "scopes"),
    ("lrs-generated-account-needs-username",
     {"lrs": {"accounts": {"moodle": {"username": ""}}}}, "username"),
    ("lrs-existing-secret-bad-name",
     {"lrs": {"accounts": {"admin": {"existingSecret": "admin secret"}}}}, "existingSecret"),
    ("lrs-refresh-not-boolean", {"lrs": {"backend": {"refreshAfterWrite": "no"}}},
     "refreshAfterWrite"),
    ("lrs-allow-yellow-not-boolean", {"lrs": {"backend": {"allowYellowStatus": "auto"}}},
     "allowYellowStatus"),
    ("lrs-keep-alive-not-duration", {"lrs": {"backend": {"pointInTimeKeepAlive": True}}},
     "pointInTimeKeepAlive"),
    ("eck-enabled-not-boolean", {"eck-elasticsearch": {"enabled": "yes"}}, "enabled"),
    ("eck-name-too-long", {"eck-elasticsearch": {"fullnameOverride": "a" * 37}},
     "fullnameOverride"),
    ("eck-name-not-dns-label", {"eck-elasticsearch": {"fullnameOverride": "La_Stack"}},
     "fullnameOverride"),
    ("eck-version-9", {"eck-elasticsearch": {"version": "9.1.0"}}, "version"),
    ("eck-version-missing-when-enabled", {"eck-elasticsearch": {"version": None}}, "version"),
    ("eck-volume-policy-unknown",
     {"eck-elasticsearch": {"volumeClaimDeletePolicy": "DeleteAlways"}},
     "volumeClaimDeletePolicy"),
    ("eck-node-count-negative",
     {"eck-elasticsearch": {"nodeSets": [{"name": "default", "count": -1}]}}, "count"),
    ("eck-node-set-without-name", {"eck-elasticsearch": {"nodeSets": [{"count": 1}]}},
     "nodeSets"),
    ("eck-node-sets-not-list", {"eck-elasticsearch": {"nodeSets": {"default": {}}}},
     "nodeSets"),
    ("ralph-enabled-not-boolean", {"ralph": {"enabled": "yes"}}, "enabled"),
    ("ralph-env-secret-not-string", {"ralph": {"lrsEnvSecret": 5}}, "lrsEnvSecret"),
    ("ralph-ca-secret-not-string",
     {"ralph": {"database": {"tls": {"certificatesSecret": 1}}}}, "certificatesSecret"),
    ("superset-enabled-not-boolean", {"superset": {"enabled": 1}}, "enabled"),
    ("moodle-enabled-not-boolean", {"moodle": {"enabled": "no"}}, "enabled"),
    ("moodle-secret-not-string", {"moodle": {"existingSecret": 5}}, "existingSecret"),
    ("xapi-plugin-hash-not-sha256",
     {"logstoreXapi": {"plugin": {"treeSha256": "abc"}}}, "treeSha256"),
    ("xapi-batch-size-zero", {"logstoreXapi": {"delivery": {"maxBatchSize": 0}}},
     "maxBatchSize"),
    ("xapi-cron-too-often", {"logstoreXapi": {"delivery": {"cronIntervalSeconds": 1}}},
     "cronIntervalSeconds"),
    ("xapi-typo", {"logstoreXapi": {"delivery": {"backgroundmode": False}}}, "backgroundmode"),
]
CASE_IDS = [case[0] for case in INVALID_CASES]


def test_should_have_enough_distinct_invalid_cases():
    assert len(set(CASE_IDS)) == len(CASE_IDS) >= 30
    assert len({json.dumps(values, sort_keys=True) for _, values, _ in INVALID_CASES}) \
        == len(INVALID_CASES)


class TestInvalidValuesRejected:
    """Bad values are refused before anything renders, naming the offending key."""

    @pytest.mark.parametrize(("values", "key"), [c[1:] for c in INVALID_CASES], ids=CASE_IDS)
    def test_should_be_rejected_by_the_schema(self, values, key):
        errors = schema_errors(coalesce(default_values(), values))
        assert errors, "the schema accepts these values"

    @pytest.mark.parametrize("helm", HELMS)
    @pytest.mark.parametrize(("values", "key"), [c[1:] for c in INVALID_CASES], ids=CASE_IDS)
    def test_should_be_rejected_by_helm_template(self, helm, values, key):
        with pytest.raises(HelmFailedError) as failed:
            render_chart(values=values, helm=helm)
        # Helm 3 and 4 word their messages differently: only the key's name is checked,
        # as a whole word so that `hook` is not found inside `hooks`.
        assert re.search(rf"(?<![\w-]){re.escape(key)}(?![\w-])", failed.value.stderr), \
            failed.value.stderr
