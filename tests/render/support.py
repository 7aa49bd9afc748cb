"""What several render-test modules read out of rendered objects (a plain module: the tests
import it; it holds no fixtures)."""

from __future__ import annotations

import json

import jmespath

from lastack.chart.render import find
from lastack.paths import VALUES_DIR

# The values profiles a user installs with: the chart's defaults and the two documented ones.
PROFILES = [None, VALUES_DIR / "demo.yaml", VALUES_DIR / "production.yaml"]
PROFILE_IDS = ["defaults", "demo", "production"]


def secrets_config(objects: list[dict]) -> dict:
    """The config the secrets hook reads, from the rendered secrets-hook ConfigMap."""
    cm = find(objects, "ConfigMap", "la-stack-secrets-hook")[0]
    return json.loads(cm["data"]["secrets.json"])


def hook_annotations(obj: dict) -> tuple[str, int, str]:
    ann = obj["metadata"]["annotations"]
    return ann["helm.sh/hook"], int(ann["helm.sh/hook-weight"]), ann["helm.sh/hook-delete-policy"]


def env_of(container: dict) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def restricted(pod_spec: dict) -> None:
    """Assert a Pod spec passes Pod Security `restricted` on the fields we own."""
    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    assert pod_spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    for container in pod_spec["containers"]:
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"]["drop"] == ["ALL"]


# The Elasticsearch endpoint and CA Secret of a release named la-stack (ECK's naming).
ES_URL = "https://la-stack-es-http.la-stack.svc:9200"
CA_SECRET = "la-stack-es-http-certs-public"


def at(obj: dict, path: str) -> object:
    """The field at a jmespath `path` of a rendered object."""
    return jmespath.search(path, obj)
