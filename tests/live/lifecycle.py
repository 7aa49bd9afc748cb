"""What the lifecycle tests (test_lifecycle.py) share: the release under test, the value
changes its upgrades make, and what the rendered chart says a release is made of."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from kubernetes import client

from lastack.paths import CHART_DIR
from lastack.testing.helm_release import API_VERSION_ARGS, HOOK, Helm
from lastack.testing.hookrunner import HookRunner
from tests.live.cluster import LiveCluster
from tests.live.recorder import Seen


def _one_more_node_and_patch() -> dict[str, Any]:
    """The chart's Elasticsearch values with one node more in the first node set and the
    next patch version."""
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())["eck-elasticsearch"]
    node_sets = values["nodeSets"]
    major, minor, patch = values["version"].split(".")
    return {"nodeSets": [{**node_sets[0], "count": node_sets[0]["count"] + 1}, *node_sets[1:]],
            "version": f"{major}.{minor}.{int(patch) + 1}"}


# A value whose change reaches a normal object (Ralph's env ConfigMap) on upgrade, and a
# node count and version the ECK operator must reconcile.
UPGRADE_CHANGE = {"lrs": {"backend": {"refreshAfterWrite": True}},
                  "eck-elasticsearch": _one_more_node_and_patch()}
# One more LRS account: Ralph's auth.json Secret changes, so Ralph (only) must roll.
NEW_ACCOUNT = {"lrs": {"sources": {"campus": {"mbox": "mailto:moodle@campus.example.org"}}}}
RESTARTED_AT = "la-stack.io/restartedAt"


@dataclass
class Release:
    helm: Helm
    namespace: str
    values: dict[str, Any]
    cluster: LiveCluster
    runner: HookRunner | None
    install_output: str = ""
    installed: bool = False
    install_events: list[Seen] = field(default_factory=list)
    # resourceVersion of each Secret, and uid of each Elasticsearch Pod, before the upgrade
    versions_before_upgrade: dict[str, str] = field(default_factory=dict)
    es_pods_before_upgrade: dict[str, str] = field(default_factory=dict)

    def diagnostics(self) -> str:
        runner = self.runner.report() if self.runner else "(no hook runner: real kubelets)"
        return f"hook runner:\n{runner}"

    def require_installed(self) -> None:
        if not self.installed:
            pytest.fail(f"the install failed (see test_install):\n{self.install_output}")

    def rendered(self, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        manifest = self.helm.template(self.namespace, values or self.values,
                                      extra=API_VERSION_ARGS)
        return [d for d in yaml.safe_load_all(manifest) if d]


def generated_secret_names(objects: list[dict[str, Any]]) -> set[str]:
    """The Secrets the secrets hook creates, from the config the chart hands it."""
    for obj in objects:
        if obj["kind"] == "ConfigMap" and "secrets.json" in (obj.get("data") or {}):
            config = json.loads(obj["data"]["secrets.json"])
            names = {e["secret"] for key in ("esUsers", "lrsAccounts", "generic")
                     for e in config.get(key, []) if not e.get("existingSecret")}
            if config.get("ralph"):
                names |= {config["ralph"]["envSecret"], config["ralph"]["authSecret"]}
            return names
    return set()


def chart_secret_names(objects: list[dict[str, Any]]) -> set[str]:
    """Secrets the release makes: rendered ones and the ones its hook generates."""
    return generated_secret_names(objects) | {o["metadata"]["name"] for o in objects
                                              if o["kind"] == "Secret"}


def pod_templates(apps: client.AppsV1Api, namespace: str) -> dict[str, dict[str, Any]]:
    """The pod template of each Deployment, as the API server holds it."""
    return {d.metadata.name: client.ApiClient().sanitize_for_serialization(d.spec.template)
            for d in apps.list_namespaced_deployment(namespace).items}


def ralph_deployment(objects: list[dict[str, Any]], auth_secret: str) -> str:
    """The rendered Deployment that mounts Ralph's auth.json Secret."""
    (name,) = [o["metadata"]["name"] for o in objects if o["kind"] == "Deployment"
               and auth_secret in {v.get("secret", {}).get("secretName")
                                   for v in o["spec"]["template"]["spec"].get("volumes", [])}]
    return name


def secrets_config(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return next(json.loads(o["data"]["secrets.json"]) for o in objects
                if o["kind"] == "ConfigMap" and "secrets.json" in (o.get("data") or {}))


def normal_objects(objects: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(o["kind"], o["metadata"]["name"]) for o in objects
            if not (o["metadata"].get("annotations") or {}).get(HOOK)}


def config_maps_unlike(core: client.CoreV1Api, namespace: str,
                       rendered: list[dict[str, Any]]) -> list[str]:
    """The release's normal ConfigMaps whose live data is not the rendered data."""
    return [o["metadata"]["name"] for o in rendered
            if o["kind"] == "ConfigMap" and not (o["metadata"].get("annotations") or {}).get(HOOK)
            and (core.read_namespaced_config_map(o["metadata"]["name"], namespace).data or {})
            != (o.get("data") or {})]
