"""Post-install/post-upgrade hook: the statements store, ready for years of data.

Run as `python3 /hooks/es_bootstrap.py`. Environment:
  ES_URL            Elasticsearch URL, e.g. https://<es>-es-http.<ns>.svc:9200 (required;
                    http:// is accepted for tests, https:// is always verified)
  ES_USERNAME       user with the la_stack_index_bootstrap role (empty: no authentication)
  ES_PASSWORD       its password (required with ES_USERNAME)
  ES_CA_FILE        CA bundle to verify https:// with (ECK's `<es>-es-http-certs-public`
                    ca.crt); empty: the system trust store
  CONFIG_FILE       the store's settings as the chart renders them (default: es-bootstrap.json
                    beside this file): `alias`, `testIndex`, `settings`, `lifecycle`, `snapshots`
  TEMPLATE_FILE     the mappings (default: statements-template.json beside this file)
  SCRIPT_FILE       the ingest pipeline's Painless script (default:
                    statements-dimensions.painless beside this file)
  DEADLINE_SECONDS  overall time budget (default 300)

What it makes, each step idempotent:
- ingest pipeline `<alias>-dimensions` (where every ingest node runs Painless): each
  statement's course and module under `la_stack` (es_pipeline.py);
- ILM policy `<alias>` (where the distribution has ILM): rollover thresholds, optional delete;
- index template `la-stack-<alias>` for `<alias>-*`: the mappings, the settings, the ILM
  policy, the pipeline as `default_pipeline`; it never carries the alias (a template with
  the alias breaks rollover);
- `<alias>-000001` with the write alias `<alias>`, only when the alias does not exist yet
  (after a rollover the alias is there, so a re-run never recreates `-000001`), or when
  the alias holds only read-only indices (an earlier release's, moved under it);
- one rollover when the write index predates the pipeline (an upgrade): the pipeline's
  fields must not reach the `_source` of an index whose mapping does not exclude them;
- a concrete index named `<alias>` from an earlier release is kept, Ralph keeps writing to
  it, and its mapping is fixed in place where that is possible (the chart README says how
  to move it under the alias);
- `testIndex` for `helm test`, outside the alias, so test statements never reach dashboards;
- the snapshot repository (verified) and the SLM policy, when snapshots are on.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from es_api import EsApi, digest, error_type, stored_digest, with_digest
from es_lifecycle import ensure_ilm_policy, ensure_snapshots, ilm_policy
from es_pipeline import (
    ensure_pipeline,
    pipeline_body,
    pipeline_name,
    read_script,
    script_processor_everywhere,
    write_index_pipeline,
)
from hooklib import Deadline, JsonClient, env, fail, log, read_json, run

TEMPLATE_PREFIX = "la-stack-"
FIRST_BACKING_SUFFIX = "-000001"
HEALTH_WAIT = "5s"  # server-side wait per poll; the client keeps polling until the deadline
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
HERE = os.path.dirname(os.path.abspath(__file__))


def load_config(path: str) -> dict[str, Any]:
    raw = read_json(path, "bootstrap config")
    if not isinstance(raw, dict):
        fail(f"the bootstrap config {path} must be a JSON object.")
    for key in ("alias", "testIndex"):
        value = raw.get(key, "")
        if not isinstance(value, str) or (value and not NAME.match(value)):
            fail(f"{key} in {path} must be an index name (lowercase, no spaces), not {value!r}.")
    if not raw.get("alias"):
        fail(f"alias in {path} must name the statements write alias.")
    if not isinstance(raw.get("settings", {}), dict):
        fail(f"settings in {path} must be an object of index settings.")
    rollover = (raw.get("lifecycle") or {}).get("rollover")
    if not isinstance(rollover, dict) or not rollover:
        fail(f"lifecycle.rollover in {path} must give at least one rollover threshold.")
    snapshots = raw.get("snapshots")
    if snapshots is not None:
        for key in ("repository", "policy"):
            if not isinstance(snapshots.get(key), dict) or not snapshots[key].get("name"):
                fail(f"snapshots.{key}.name in {path} must be set when snapshots are on.")
    return raw


def index_template(mappings_file: dict[str, Any], config: dict[str, Any],
                   ilm: bool, pipeline: str = "") -> dict[str, Any]:
    """The composable template of the backing indices (`<alias>-*`)."""
    alias = config["alias"]
    settings = dict(config.get("settings") or {})
    if ilm:
        settings["lifecycle"] = {"name": alias, "rollover_alias": alias}
    if pipeline:
        settings["default_pipeline"] = pipeline
    body = json.loads(json.dumps(mappings_file))
    body["index_patterns"] = [f"{alias}-*"]
    body.setdefault("template", {})["settings"] = {"index": settings}
    return body


class Bootstrap:
    def __init__(self, api: EsApi) -> None:
        self.api = api

    def wait_for_cluster(self) -> None:
        path = f"/_cluster/health?wait_for_status=yellow&timeout={HEALTH_WAIT}"
        body = self.api.ok("GET", path, what="waiting for the cluster to be yellow or "
                                             "green").body or {}
        log(f"cluster {body.get('cluster_name')}: {body.get('status')}, "
            f"{body.get('number_of_nodes')} node(s)")

    def ensure_template(self, name: str, template: dict[str, Any]) -> str:
        path = f"/_index_template/{name}"
        current = self.api.call("GET", path)
        if current.status == 200:
            items = (current.body or {}).get("index_templates", [])
            meta = items[0].get("index_template", {}).get("_meta") if items else None
            if stored_digest(meta) == digest(template):
                return "unchanged"
        elif current.status != 404:
            fail(f"reading index template {name} failed: {current.status} "
                 f"{current.error_reason()}.")
        self.api.ok("PUT", path, with_digest(template), f"writing index template {name}")
        return "created" if current.status == 404 else "updated"

    def alias_indices(self, alias: str) -> dict[str, Any] | None:
        """{index: alias properties} of the alias, or None when there is no such alias."""
        response = self.api.call("GET", f"/_alias/{alias}")
        if response.status == 404:
            return None
        if response.status != 200:
            fail(f"reading alias {alias} failed: {response.status} {response.error_reason()}.")
        return {index: (entry.get("aliases") or {}).get(alias) or {}
                for index, entry in (response.body or {}).items()}

    def ensure_write_alias(self, alias: str, template: dict[str, Any]) -> tuple[str, str]:
        """(index Ralph writes to, what happened)."""
        first = f"{alias}{FIRST_BACKING_SUFFIX}"
        members = self.alias_indices(alias)
        if members:
            writers = [i for i, a in members.items() if a.get("is_write_index")]
            implicit = len(members) == 1 and "is_write_index" not in next(iter(members.values()))
            if implicit:  # an alias over one index writes to it unless told otherwise
                writers = list(members)
            if len(writers) == 1:
                return writers[0], f"exists, writes go to {writers[0]}"
            if first in members:
                fail(f"alias {alias} spans {sorted(members)} with no write index; mark the "
                     f"newest with is_write_index (POST _aliases) and run the hook again.")
            # Indices moved under the alias read-only (an earlier release's statements):
            # new statements go to a first backing index of their own.
            self.create_write_index(alias, first)
            return first, f"created {first} as the write index beside {sorted(members)}"
        concrete = self.api.call("GET", f"/{alias}/_mapping")
        if concrete.status == 200:
            return alias, self.fix_concrete_index(alias, concrete.body[alias]["mappings"],
                                                  template)
        self.create_write_index(alias, first)
        return first, f"created on {first}"

    def create_write_index(self, alias: str, index: str) -> None:
        response = self.api.call("PUT", f"/{index}",
                                 {"aliases": {alias: {"is_write_index": True}}})
        if response.status == 200:
            return
        if error_type(response) == "resource_already_exists_exception":
            fail(f"index {index} exists but alias {alias} does not write to it; add the "
                 f"alias (POST _aliases, is_write_index true) and run the hook again.")
        fail(f"creating index {index} failed: {response.status} {response.error_reason()}.")

    def fix_concrete_index(self, index: str, mappings: dict[str, Any],
                           template: dict[str, Any]) -> str:
        """An index named like the alias, from a release without rollover: keep it and give
        its mapping what can change in place (ignore_above on flattened fields, the
        dynamic templates), so no long value can reject a statement any more."""
        update: dict[str, Any] = {
            "dynamic_templates": template["template"]["mappings"]["dynamic_templates"],
            "properties": flattened_without_limit(mappings.get("properties") or {},
                                                  ignore_above_of(template)),
        }
        self.api.ok("PUT", f"/{index}/_mapping", update, f"fixing the mapping of {index}")
        return ("a concrete index from an earlier release: kept, Ralph still writes to it, "
                "mapping fixed in place; see the chart README, 'Moving statements under the "
                "write alias'")

    def ensure_plain_index(self, index: str, template: dict[str, Any]) -> str:
        """An index outside the alias, with the same mappings (no lifecycle)."""
        settings = {k: v for k, v in template["template"]["settings"]["index"].items()
                    if k != "lifecycle"}
        body = {"settings": {"index": settings},
                "mappings": template["template"]["mappings"]}
        response = self.api.call("PUT", f"/{index}", body)
        if response.status == 200:
            return "created"
        if error_type(response) == "resource_already_exists_exception":
            return "exists, left as it is"
        fail(f"creating index {index} failed: {response.status} {response.error_reason()}.")

    def roll_over_onto_pipeline(self, alias: str, written: str, pipeline: str) -> str:
        """The write index as it must be for the pipeline: rolled over once if it predates it."""
        if written == alias:
            return (f"not used by {alias}, a concrete index from an earlier release; it starts "
                    "with the write alias (chart README, 'Moving statements under the write "
                    "alias')")
        if write_index_pipeline(self.api, written) == pipeline:
            return f"the default pipeline of {written}"
        rolled = self.api.ok("POST", f"/{alias}/_rollover", {},
                             f"rolling {alias} over onto the pipeline").body or {}
        return (f"{written} predates it: rolled over to {rolled.get('new_index')}, the earlier "
                "statements keep no course fields (chart README, 'Course and module')")

    def wait_allocated(self, index: str) -> str:
        # Ralph's first write must not race the primary shard's allocation.
        health = self.api.ok(
            "GET", f"/_cluster/health/{index}?wait_for_status=yellow&timeout={HEALTH_WAIT}",
            what=f"waiting for index {index} to be allocated")
        return str((health.body or {}).get("status"))


def ignore_above_of(template: dict[str, Any]) -> int:
    for entry in template["template"]["mappings"]["dynamic_templates"]:
        mapping = next(iter(entry.values()))["mapping"]
        if mapping.get("type") == "flattened":
            return int(mapping["ignore_above"])
    fail("the mappings file has no flattened dynamic template to take ignore_above from.")


def flattened_without_limit(properties: dict[str, Any], limit: int) -> dict[str, Any]:
    """The part of a mapping that gives each flattened field lacking it `ignore_above`."""
    out: dict[str, Any] = {}
    for name, field in properties.items():
        if field.get("type") == "flattened" and "ignore_above" not in field:
            out[name] = {**field, "ignore_above": limit}
        elif field.get("properties"):
            nested = flattened_without_limit(field["properties"], limit)
            if nested:
                out[name] = {"properties": nested}
    return out


def main() -> None:
    deadline = Deadline.from_env()
    url = env("ES_URL")
    username = os.environ.get("ES_USERNAME", "")
    password = os.environ.get("ES_PASSWORD", "")
    if username and not password:
        fail("ES_PASSWORD must be set when ES_USERNAME is.")
    config = load_config(os.environ.get("CONFIG_FILE") or os.path.join(HERE, "es-bootstrap.json"))
    mappings = read_json(os.environ.get("TEMPLATE_FILE")
                         or os.path.join(HERE, "statements-template.json"), "index template")
    ca_file = os.environ.get("ES_CA_FILE", "")
    headers = JsonClient.basic_auth(username, password) if username else {}
    client = JsonClient(url, deadline, ca_file=ca_file or None, headers=headers)
    if url.startswith("http://"):
        log("warning: plain http, no TLS (acceptable for tests only)")
    api = EsApi(client, username)
    bootstrap = Bootstrap(api)
    alias = config["alias"]

    log(f"Elasticsearch {url}: waiting for the cluster (deadline {deadline.seconds:g}s)")
    bootstrap.wait_for_cluster()
    ilm, slm = api.available("/_ilm/status"), api.available("/_slm/status")
    snapshot_policy = ensure_snapshots(api, config.get("snapshots"), alias, slm)
    if ilm:
        policy = ilm_policy(config["lifecycle"], snapshot_policy)
        log(f"ILM policy {alias}: {ensure_ilm_policy(api, alias, policy)}")
    else:
        log("ILM: skipped, this Elasticsearch has no index lifecycle management (no _ilm "
            "API); roll over with POST <alias>/_rollover and delete old indices yourself")
    pipeline = ""
    if script_processor_everywhere(api):
        pipeline = pipeline_name(alias)
        body = pipeline_body(read_script(os.environ.get("SCRIPT_FILE") or os.path.join(
            HERE, "statements-dimensions.painless")))
        log(f"ingest pipeline {pipeline}: {ensure_pipeline(api, pipeline, body)}")
    else:
        log("ingest pipeline: skipped, this Elasticsearch runs no Painless ingest scripts "
            "(modules ingest-common, lang-painless); statements are stored without their "
            "course and module fields")
    template, name = index_template(mappings, config, ilm, pipeline), TEMPLATE_PREFIX + alias
    log(f"index template {name}: {bootstrap.ensure_template(name, template)}")
    written, outcome = bootstrap.ensure_write_alias(alias, template)
    log(f"write alias {alias}: {outcome} ({bootstrap.wait_allocated(written)})")
    if pipeline:
        log(f"ingest pipeline {pipeline}: "
            f"{bootstrap.roll_over_onto_pipeline(alias, written, pipeline)}")
    test_index = config.get("testIndex") or ""
    if test_index:
        outcome = bootstrap.ensure_plain_index(test_index, template)
        log(f"test index {test_index}: {outcome} ({bootstrap.wait_allocated(test_index)})")
    log("done")


if __name__ == "__main__":
    run(main)
