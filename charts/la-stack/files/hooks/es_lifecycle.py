"""Rollover, retention and snapshots of the statements indices (stdlib only).

ILM rolls the write index over and deletes old backing indices; SLM takes the snapshots.
Both are free in the Basic licence ECK runs, but some distributions lack the modules: the
bootstrap asks (`GET _ilm/status`, `GET _slm/status`) and skips what is absent with a log
line. Each object is written only when it differs from what is stored.
"""

from __future__ import annotations

import json
from typing import Any

from es_api import EsApi, digest, stored_digest, with_digest
from hooklib import fail, log


def ilm_policy(lifecycle: dict[str, Any], snapshot_policy: str | None) -> dict[str, Any]:
    """Hot phase rolls over at the first threshold reached; the optional delete phase counts
    from rollover and, with snapshots on, waits for a snapshot that holds the index."""
    phases: dict[str, Any] = {"hot": {"actions": {"rollover": dict(lifecycle["rollover"])}}}
    delete_after = lifecycle.get("deleteAfter") or ""
    if delete_after:
        actions: dict[str, Any] = {}
        if snapshot_policy:
            actions["wait_for_snapshot"] = {"policy": snapshot_policy}
        actions["delete"] = {}
        phases["delete"] = {"min_age": delete_after, "actions": actions}
    return {"policy": {"phases": phases, "_meta": {"managed_by": "la-stack"}}}


def ensure_ilm_policy(api: EsApi, name: str, body: dict[str, Any]) -> str:
    path = f"/_ilm/policy/{name}"
    current = api.call("GET", path)
    if current.status == 200:
        stored = ((current.body or {}).get(name) or {}).get("policy", {}).get("_meta")
        if stored_digest(stored) == digest(body["policy"]):
            return "unchanged"
    elif current.status != 404:
        fail(f"reading ILM policy {name} failed: {current.status} {current.error_reason()}.")
    api.ok("PUT", path, {"policy": with_digest(body["policy"])}, f"writing ILM policy {name}")
    return "created" if current.status == 404 else "updated"


def _as_stored(settings: dict[str, Any]) -> dict[str, str]:
    """Elasticsearch answers repository settings as strings."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in settings.items()}


def ensure_repository(api: EsApi, repository: dict[str, Any]) -> str:
    name = repository["name"]
    wanted = {"type": repository["type"], "settings": repository.get("settings") or {}}
    path = f"/_snapshot/{name}"
    current = api.call("GET", path)
    outcome = "created"
    if current.status == 200:
        stored = (current.body or {}).get(name) or {}
        if (stored.get("type"), stored.get("settings") or {}) == (
                wanted["type"], _as_stored(wanted["settings"])):
            outcome = "unchanged"
        else:
            outcome = "updated"
    elif current.status != 404:
        fail(f"reading snapshot repository {name} failed: {current.status} "
             f"{current.error_reason()}.")
    if outcome != "unchanged":
        api.ok("PUT", path, wanted, f"registering snapshot repository {name}")
    verified = api.call("POST", f"{path}/_verify", what=f"verifying snapshot repository {name}")
    if verified.status != 200:
        fail(f"snapshot repository {name} ({wanted['type']}) cannot be used by every node: "
             f"{verified.error_reason()}.")
    nodes = len((verified.body or {}).get("nodes") or {})
    return f"{outcome}, verified by {nodes} node(s)"


def slm_policy(policy: dict[str, Any], repository: str, alias: str) -> dict[str, Any]:
    retention = policy.get("retention") or {}
    body: dict[str, Any] = {
        "schedule": policy["schedule"],
        "name": f"<{policy['name']}-{{now/d}}>",
        "repository": repository,
        "config": {"indices": [alias, f"{alias}-*"], "include_global_state": False},
    }
    kept = {key: retention[src] for key, src in (("expire_after", "expireAfter"),
                                                ("min_count", "minCount"),
                                                ("max_count", "maxCount")) if retention.get(src)}
    if kept:
        body["retention"] = kept
    return body


def ensure_slm_policy(api: EsApi, name: str, body: dict[str, Any]) -> str:
    path = f"/_slm/policy/{name}"
    current = api.call("GET", path)
    if current.status == 200:
        stored = ((current.body or {}).get(name) or {}).get("policy") or {}
        if stored == body:
            return "unchanged"
    elif current.status != 404:
        fail(f"reading SLM policy {name} failed: {current.status} {current.error_reason()}.")
    api.ok("PUT", path, body, f"writing SLM policy {name}")
    return "created" if current.status == 404 else "updated"


def ensure_snapshots(api: EsApi, snapshots: dict[str, Any] | None, alias: str,
                     slm: bool) -> str | None:
    """Repository (verified) and SLM policy; returns the SLM policy's name when it exists."""
    if not snapshots:
        log("snapshots: off (elasticsearch.snapshots.enabled)")
        return None
    repository = snapshots["repository"]
    log(f"snapshot repository {repository['name']}: {ensure_repository(api, repository)}")
    policy = snapshots["policy"]
    if not slm:
        log(f"SLM policy {policy['name']}: skipped, this Elasticsearch has no snapshot "
            "lifecycle management (no _slm API); take snapshots with PUT _snapshot yourself")
        return None
    body = slm_policy(policy, repository["name"], alias)
    log(f"SLM policy {policy['name']}: {ensure_slm_policy(api, policy['name'], body)}")
    return str(policy["name"])
