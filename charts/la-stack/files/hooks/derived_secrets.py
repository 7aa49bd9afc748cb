"""The derived Secrets of the secrets hook: rewritten only when their inputs' digest changes,
and the Deployments that read them rolled when they are."""

from __future__ import annotations

import datetime
from collections.abc import Callable

from hooklib import fail, log
from kubeapi import MAX_CONFLICTS, Conflict, Secret, SecretsApi
from secrets_config import Metadata

DIGEST_ANNOTATION = "la-stack.io/inputs-sha256"
# On a derived Secret whose readers have not been rolled since its data changed: kept until
# they are, so a run that fails in between rolls them on the next one.
ROLLOUT_PENDING_ANNOTATION = "la-stack.io/rollout-pending"
# On the pod template of a Deployment rolled because a Secret it reads changed.
RESTARTED_AT_ANNOTATION = "la-stack.io/restartedAt"


def ensure_derived(
    api: SecretsApi,
    name: str,
    digest: str,
    build: Callable[[], dict[str, str]],
    metadata: Metadata,
    has_readers: bool = False,
) -> tuple[str, bool]:
    """Create or rewrite a derived Secret only when its inputs' digest differs (or its
    metadata are stale); returns what happened, and whether its readers are to be rolled
    (rewritten now or earlier without a roll since). `build` runs only when a data write is
    due (bcrypt hashes are slow and salted)."""
    for _ in range(MAX_CONFLICTS):
        current = api.get(name)
        if current is None:
            created = Secret(name, "Opaque", build(), annotations={DIGEST_ANNOTATION: digest})
            metadata.conform(created)
            try:
                api.create(created)
                return "created", False
            except Conflict:
                continue
        if DIGEST_ANNOTATION not in current.annotations:
            fail(
                f"Secret {name} exists but was not written by this hook (no {DIGEST_ANNOTATION} "
                f"annotation); delete it or choose another name."
            )
        if current.annotations[DIGEST_ANNOTATION] != digest:
            current.data = build()
            current.annotations[DIGEST_ANNOTATION] = digest
            if has_readers:
                current.annotations[ROLLOUT_PENDING_ANNOTATION] = "true"
            outcome = "updated (its inputs changed)"
        elif metadata.is_stale_on(current):
            outcome = "unchanged (labels and annotations brought up to date)"
        else:
            return "unchanged", ROLLOUT_PENDING_ANNOTATION in current.annotations
        metadata.conform(current)
        try:
            api.update(current)
            return outcome, ROLLOUT_PENDING_ANNOTATION in current.annotations
        except Conflict:
            continue
    fail(f"Secret {name} kept changing under us ({MAX_CONFLICTS} conflicts); try again.")


def clear_rollout_pending(api: SecretsApi, name: str) -> None:
    for _ in range(MAX_CONFLICTS):
        current = api.get(name)
        if current is None:
            fail(f"Secret {name} was deleted while the hook rolled its readers.")
        if current.annotations.pop(ROLLOUT_PENDING_ANNOTATION, None) is None:
            return
        try:
            api.update(current)
            return
        except Conflict:
            continue
    fail(f"Secret {name} kept changing under us ({MAX_CONFLICTS} conflicts); try again.")


def roll_readers(api: SecretsApi, deployments: tuple[str, ...], changed: list[str]) -> None:
    """Restart the Pods of the Deployments that read the `changed` Secrets: a Secret mounted
    as a file reaches a running Pod late or never (Ralph caches auth.json), one taken as
    environment variables never does."""
    restarted_at = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for deployment in deployments:
        if api.annotate_pod_template(deployment, {RESTARTED_AT_ANNOTATION: restarted_at}):
            log(f"Deployment {deployment}: rolled, {', '.join(changed)} changed")
        else:
            log(f"Deployment {deployment}: does not exist yet, nothing to roll")
    for name in changed:
        clear_rollout_pending(api, name)
