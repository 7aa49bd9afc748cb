"""The source Secrets of the secrets hook: credentials generated once or provided by the
user, never rewritten; only the metadata of those this program made are kept up to date."""

from __future__ import annotations

from collections.abc import Callable

from credentials import Credentials, random_password
from hooklib import fail, log
from kubeapi import MAX_CONFLICTS, Conflict, Secret, SecretsApi
from secrets_config import Config, EsUser, GenericSecret, LrsAccount, Metadata

BASIC_AUTH = "kubernetes.io/basic-auth"


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


def bring_metadata_up_to_date(api: SecretsApi, current: Secret, metadata: Metadata) -> Secret:
    """Give a source Secret this program made the labels and annotations of this version
    (an earlier one labelled them as the release's, which Argo CD prunes); its data are
    written back exactly as read."""
    for _ in range(MAX_CONFLICTS):
        if not metadata.is_stale_on(current):
            return current
        metadata.conform(current)
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
        metadata.conform(created)
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
