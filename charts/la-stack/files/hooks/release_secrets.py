"""Pre-install/pre-upgrade hook: generate la-stack's credentials once, derive Ralph's Secrets.

Run as `python3 /hooks/release_secrets.py`. Environment:
  CONFIG_FILE        path of the JSON config (required)
  DEADLINE_SECONDS   overall time budget (default 300)
  K8S_API_URL, K8S_TOKEN_FILE, K8S_CA_FILE, K8S_NAMESPACE
                     override the in-cluster ServiceAccount defaults (for tests)

The config's shape and the rules this program keeps are written once, in README.md beside
this file (section release_secrets.py); `credentials.parse_config` is the config's
executable form.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

from credentials import (
    DIGEST_ANNOTATION,
    RALPH_AUTH_KEY,
    RALPH_HOSTS_KEY,
    RESTARTED_AT_ANNOTATION,
    ROLLOUT_PENDING_ANNOTATION,
    Config,
    ConfigError,
    Credentials,
    EsUser,
    GenericSecret,
    LrsAccount,
    Metadata,
    auth_inputs,
    auth_json,
    check_unique_usernames,
    env_inputs,
    hosts_with_credentials,
    inputs_digest,
    parse_config,
    random_password,
)
from hooklib import Deadline, env, fail, log, read_json, run
from kubeapi import Conflict, Secret, SecretsApi

BASIC_AUTH = "kubernetes.io/basic-auth"
MAX_CONFLICTS = 5


def load_config(path: str) -> Config:
    raw = read_json(path, "config file")
    try:
        return parse_config(raw)
    except ConfigError as error:
        fail(f"the config file {path} is invalid: {error}")


def require_keys(secret: Secret, keys: list[str]) -> dict[str, str]:
    for key in keys:
        if not secret.data.get(key):
            fail(f"Secret {secret.name} has no value for key {key!r}; add it or delete the Secret.")
    return secret.data


def read_existing(api: SecretsApi, name: str, keys: list[str]) -> dict[str, str]:
    secret = api.get(name)
    if secret is None:
        fail(f"the existingSecret {name} does not exist in namespace {api.namespace}.")
    log(f"Secret {name}: provided (existingSecret), read only")
    return require_keys(secret, keys)


def stale(secret: Secret, metadata: Metadata) -> bool:
    return metadata.applied(secret.labels, secret.annotations) != (
        secret.labels, secret.annotations)


def conform(secret: Secret, metadata: Metadata) -> None:
    secret.labels, secret.annotations = metadata.applied(secret.labels, secret.annotations)


def bring_metadata_up_to_date(api: SecretsApi, current: Secret, metadata: Metadata) -> Secret:
    """Give a source Secret this program made the labels and annotations of this version
    (an earlier one labelled them as the release's, which Argo CD prunes); its data are
    written back exactly as read."""
    for _ in range(MAX_CONFLICTS):
        if not stale(current, metadata):
            return current
        conform(current, metadata)
        try:
            updated = api.update(current)
            log(f"Secret {current.name}: labels and annotations brought up to date")
            return updated
        except Conflict:
            reread = api.get(current.name)
            if reread is None:
                fail(f"Secret {current.name} was deleted while the hook relabelled it.")
            current = reread
    fail(f"Secret {current.name} kept changing under us ({MAX_CONFLICTS} conflicts); try again.")


def refuse_renamed_credentials(api: SecretsApi, config: Config) -> None:
    """An earlier version named some generated Secrets `la-stack-…` whatever the release.
    Generating them anew under the release's name would change credentials that stored data
    depend on (Superset encrypts with its secret key), so the hook stops before writing."""
    for entry in (*config.lrs_accounts, *config.generic):
        former = entry.formerly
        if former is None or entry.existing_secret or api.get(entry.secret) is not None:
            continue
        old = api.get(former.secret)
        if old is not None and config.metadata.of_this_release(old.labels):
            fail(f"Secret {entry.secret} does not exist but {former.secret}, which an earlier "
                 f"version generated for this release, does: set {former.key} to "
                 f"{former.secret} to keep its credentials (chart README, Upgrade).")


def ensure_source(
    api: SecretsApi,
    name: str,
    secret_type: str,
    generate: Callable[[], dict[str, str]],
    keys: list[str],
    metadata: Metadata,
) -> dict[str, str]:
    """Create the Secret with generated values if missing; otherwise use its data as they
    are (only the metadata of one this program made is brought up to date)."""
    current = api.get(name)
    if current is None:
        created = Secret(name, secret_type, generate())
        conform(created, metadata)
        try:
            current = api.create(created)
            log(f"Secret {name}: created")
        except Conflict:
            # Another run created it between our GET and POST: theirs wins, ours is dropped.
            current = api.get(name)
            if current is None:
                fail(f"Secret {name} was reported as existing but cannot be read back.")
            log(f"Secret {name}: created meanwhile by someone else, kept as it is")
    else:
        log(f"Secret {name}: exists, kept as it is")
        if metadata.owns(current.labels):
            current = bring_metadata_up_to_date(api, current, metadata)
    return require_keys(current, keys)


def basic_auth_credentials(
    api: SecretsApi, secret: str, existing_secret: str, generate: Callable[[], dict[str, str]],
    metadata: Metadata,
) -> Credentials:
    """The username/password of a basic-auth source Secret: the user's existing one, or
    ours, created once from `generate`."""
    keys = ["username", "password"]
    if existing_secret:
        data = read_existing(api, existing_secret, keys)
    else:
        data = ensure_source(api, secret, BASIC_AUTH, generate, keys, metadata)
    return Credentials(data["username"], data["password"])


def es_user_credentials(api: SecretsApi, user: EsUser, metadata: Metadata) -> Credentials:
    # ECK reads `roles` from the same Secret: a comma-separated list of role names.
    return basic_auth_credentials(
        api, user.secret, user.existing_secret,
        lambda: {"username": user.username, "password": random_password(),
                 "roles": ",".join(user.roles)},
        metadata,
    )  # fmt: skip


def lrs_credentials(api: SecretsApi, account: LrsAccount, metadata: Metadata) -> Credentials:
    return basic_auth_credentials(
        api, account.secret, account.existing_secret,
        lambda: {"username": account.username, "password": random_password()},
        metadata,
    )


def ensure_generic(api: SecretsApi, entry: GenericSecret, metadata: Metadata) -> None:
    keys = list(entry.keys)
    if entry.existing_secret:
        read_existing(api, entry.existing_secret, keys)
        return
    ensure_source(
        api,
        entry.secret,
        "Opaque",
        lambda: {key: random_password(length) for key, length in entry.keys.items()},
        keys,
        metadata,
    )


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
            conform(created, metadata)
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
        elif stale(current, metadata):
            outcome = "unchanged (labels and annotations brought up to date)"
        else:
            return "unchanged", ROLLOUT_PENDING_ANNOTATION in current.annotations
        conform(current, metadata)
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


def main() -> None:
    deadline = Deadline.from_env()
    config = load_config(env("CONFIG_FILE"))
    api = SecretsApi(deadline)
    log(
        f"namespace {api.namespace}: {len(config.es_users)} Elasticsearch users, "
        f"{len(config.lrs_accounts)} LRS accounts, {len(config.generic)} other Secrets"
    )

    refuse_renamed_credentials(api, config)
    metadata = config.metadata
    es_credentials = {u.secret: es_user_credentials(api, u, metadata) for u in config.es_users}
    accounts = [(a, lrs_credentials(api, a, metadata)) for a in config.lrs_accounts]
    for entry in config.generic:
        ensure_generic(api, entry, metadata)

    ralph = config.ralph
    if ralph is None:
        log("done (no Ralph wiring requested)")
        return
    es_user = es_credentials[ralph.es_user]
    readers = bool(ralph.deployments)
    outcome, env_roll = ensure_derived(
        api,
        ralph.env_secret,
        inputs_digest(env_inputs(ralph.es_url, es_user)),
        lambda: {RALPH_HOSTS_KEY: hosts_with_credentials(ralph.es_url, es_user)},
        metadata,
        readers,
    )
    log(f"Secret {ralph.env_secret}: {outcome}")
    try:
        check_unique_usernames(accounts)
    except ConfigError as error:
        fail(str(error))
    outcome, auth_roll = ensure_derived(
        api,
        ralph.auth_secret,
        inputs_digest(auth_inputs(accounts)),
        lambda: {RALPH_AUTH_KEY: auth_json(accounts)},
        metadata,
        readers,
    )
    log(f"Secret {ralph.auth_secret}: {outcome}")
    changed = [n for n, due in ((ralph.env_secret, env_roll), (ralph.auth_secret, auth_roll))
               if due]
    if changed:
        roll_readers(api, ralph.deployments, changed)
    log("done")


if __name__ == "__main__":
    run(main)
