"""Pre-install/pre-upgrade hook: generate la-stack's credentials once, derive Ralph's Secrets.

Run as `python3 /hooks/secrets.py`. Environment:
  CONFIG_FILE        path of the JSON config below (required)
  DEADLINE_SECONDS   overall time budget (default 300)
  K8S_API_URL, K8S_TOKEN_FILE, K8S_CA_FILE, K8S_NAMESPACE
                     override the in-cluster ServiceAccount defaults (for tests)

Config (JSON; `credentials.parse_config` validates it, README.md explains it):
  {"labels": {"<k>": "<v>"},
   "esUsers":     [{"secret": S, "username": U, "roles": [R...], "existingSecret": ""}],
   "lrsAccounts": [{"secret": S, "username": U, "scopes": [..], "agent": {"mbox": "mailto:.."},
                    "existingSecret": ""}],
   "generic":     [{"secret": S, "keys": {"<key>": <length>}, "existingSecret": ""}],
   "ralph": {"envSecret": S, "authSecret": S, "esUrl": "https://..:9200",
             "esUser": "<secret of an esUsers entry>"}}

Rules:
- A source Secret (one per entry) is created with random values only when it is missing and
  is never modified afterwards. With `existingSecret`, that Secret is only read.
- Ralph's two derived Secrets (`RALPH_BACKENDS__LRS__ES__HOSTS` and `auth.json`) are created
  when missing and rewritten only when the sha256 of their inputs (annotation
  `la-stack.io/inputs-sha256`) changed, so bcrypt hashes do not rotate on every upgrade.
- Only GET, POST and PUT on Secrets by name; never a list.
"""

from __future__ import annotations

from collections.abc import Callable

from credentials import (
    DIGEST_ANNOTATION,
    RALPH_AUTH_KEY,
    RALPH_HOSTS_KEY,
    Config,
    ConfigError,
    Credentials,
    EsUser,
    GenericSecret,
    LrsAccount,
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


def ensure_source(
    api: SecretsApi,
    name: str,
    secret_type: str,
    generate: Callable[[], dict[str, str]],
    keys: list[str],
    labels: dict[str, str],
) -> dict[str, str]:
    """Create the Secret with generated values if missing; otherwise use it as it is."""
    current = api.get(name)
    if current is None:
        try:
            current = api.create(Secret(name, secret_type, generate(), dict(labels)))
            log(f"Secret {name}: created")
        except Conflict:
            # Another run created it between our GET and POST: theirs wins, ours is dropped.
            current = api.get(name)
            if current is None:
                fail(f"Secret {name} was reported as existing but cannot be read back.")
            log(f"Secret {name}: created meanwhile by someone else, kept as it is")
    else:
        log(f"Secret {name}: exists, kept as it is")
    return require_keys(current, keys)


def basic_auth_credentials(
    api: SecretsApi, secret: str, existing_secret: str, generate: Callable[[], dict[str, str]],
    labels: dict[str, str],
) -> Credentials:
    """The username/password of a basic-auth source Secret: the user's existing one, or
    ours, created once from `generate`."""
    keys = ["username", "password"]
    if existing_secret:
        data = read_existing(api, existing_secret, keys)
    else:
        data = ensure_source(api, secret, BASIC_AUTH, generate, keys, labels)
    return Credentials(data["username"], data["password"])


def es_user_credentials(api: SecretsApi, user: EsUser, labels: dict[str, str]) -> Credentials:
    # ECK reads `roles` from the same Secret: a comma-separated list of role names.
    return basic_auth_credentials(
        api, user.secret, user.existing_secret,
        lambda: {"username": user.username, "password": random_password(),
                 "roles": ",".join(user.roles)},
        labels,
    )  # fmt: skip


def lrs_credentials(api: SecretsApi, account: LrsAccount, labels: dict[str, str]) -> Credentials:
    return basic_auth_credentials(
        api, account.secret, account.existing_secret,
        lambda: {"username": account.username, "password": random_password()},
        labels,
    )


def ensure_generic(api: SecretsApi, entry: GenericSecret, labels: dict[str, str]) -> None:
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
        labels,
    )


def ensure_derived(
    api: SecretsApi,
    name: str,
    digest: str,
    build: Callable[[], dict[str, str]],
    labels: dict[str, str],
) -> str:
    """Create or rewrite a derived Secret only when its inputs' digest differs; returns what
    happened. `build` runs only when a write is due (bcrypt hashes are slow and salted)."""
    for _ in range(MAX_CONFLICTS):
        current = api.get(name)
        if current is None:
            try:
                api.create(
                    Secret(name, "Opaque", build(), dict(labels), {DIGEST_ANNOTATION: digest})
                )
                return "created"
            except Conflict:
                continue
        if DIGEST_ANNOTATION not in current.annotations:
            fail(
                f"Secret {name} exists but was not written by this hook (no {DIGEST_ANNOTATION} "
                f"annotation); delete it or choose another name."
            )
        if current.annotations[DIGEST_ANNOTATION] == digest:
            return "unchanged"
        current.data = build()
        current.annotations[DIGEST_ANNOTATION] = digest
        current.labels.update(labels)
        try:
            api.update(current)
            return "updated (its inputs changed)"
        except Conflict:
            continue
    fail(f"Secret {name} kept changing under us ({MAX_CONFLICTS} conflicts); try again.")


def main() -> None:
    deadline = Deadline.from_env()
    config = load_config(env("CONFIG_FILE"))
    api = SecretsApi(deadline)
    log(
        f"namespace {api.namespace}: {len(config.es_users)} Elasticsearch users, "
        f"{len(config.lrs_accounts)} LRS accounts, {len(config.generic)} other Secrets"
    )

    es_credentials = {u.secret: es_user_credentials(api, u, config.labels) for u in config.es_users}
    accounts = [(a, lrs_credentials(api, a, config.labels)) for a in config.lrs_accounts]
    for entry in config.generic:
        ensure_generic(api, entry, config.labels)

    ralph = config.ralph
    if ralph is None:
        log("done (no Ralph wiring requested)")
        return
    es_user = es_credentials[ralph.es_user]
    outcome = ensure_derived(
        api,
        ralph.env_secret,
        inputs_digest(env_inputs(ralph.es_url, es_user)),
        lambda: {RALPH_HOSTS_KEY: hosts_with_credentials(ralph.es_url, es_user)},
        config.labels,
    )
    log(f"Secret {ralph.env_secret}: {outcome}")
    try:
        check_unique_usernames(accounts)
    except ConfigError as error:
        fail(str(error))
    outcome = ensure_derived(
        api,
        ralph.auth_secret,
        inputs_digest(auth_inputs(accounts)),
        lambda: {RALPH_AUTH_KEY: auth_json(accounts)},
        config.labels,
    )
    log(f"Secret {ralph.auth_secret}: {outcome}")
    log("done")


if __name__ == "__main__":
    run(main)
