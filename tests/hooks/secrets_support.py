"""What the secrets hook's tests share: its config, how it is run, what it left."""

from __future__ import annotations

import json
from typing import Any

from lastack.testing.services.hookfiles import run_hook
from tests.hooks.kube_standin import KubeStandIn
from tests.hooks.support import kube_env, stack_config

DIGEST = "la-stack.io/inputs-sha256"


def config(**changes: Any) -> dict[str, Any]:
    """The session's config as the chart renders it, with no Deployment to roll (the rollout
    tests ask for Ralph's)."""
    result = stack_config()
    result["ralph"]["deployments"] = []
    result.update(changes)
    return result


def sources(cfg: dict[str, Any]) -> list[str]:
    """The Secrets of `cfg`'s Elasticsearch users and LRS accounts, in its order."""
    return [e["secret"] for kind in ("esUsers", "lrsAccounts") for e in cfg[kind]]


def generated(cfg: dict[str, Any]) -> set[str]:
    """Every Secret the hook makes from `cfg`: one per entry, and Ralph's two."""
    names = {e["existingSecret"] or e["secret"]
             for kind in ("esUsers", "lrsAccounts", "generic") for e in cfg[kind]}
    return names | {cfg["ralph"]["envSecret"], cfg["ralph"]["authSecret"]}


def run(kube: KubeStandIn, tmp_path, cfg=None, **env):
    return run_hook("release_secrets", {**kube_env(kube, cfg or config(), tmp_path), **env})


def snapshot(kube: KubeStandIn):
    return json.loads(json.dumps(kube.secrets))
