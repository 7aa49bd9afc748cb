"""Pre-install/pre-upgrade hook: generate la-stack's credentials once, derive Ralph's Secrets.

Run as `python3 /hooks/release_secrets.py`. Environment:
  CONFIG_FILE        path of the JSON config (required)
  DEADLINE_SECONDS   overall time budget (default 300)
  K8S_API_URL, K8S_TOKEN_FILE, K8S_CA_FILE, K8S_NAMESPACE
                     override the in-cluster ServiceAccount defaults (for tests)

The config's shape and the rules this program keeps are written once, in README.md beside
this file (section release_secrets.py); `secrets_config.parse_config` is the config's
executable form.
"""

from __future__ import annotations

from credentials import (
    auth_inputs,
    auth_json,
    check_unique_usernames,
    env_inputs,
    hosts_with_credentials,
    inputs_digest,
)
from derived_secrets import ensure_derived, roll_readers
from hooklib import Deadline, env, fail, log, read_json, run
from kubeapi import SecretsApi
from secrets_config import Config, ConfigError, parse_config
from source_secrets import (
    ensure_generic,
    es_user_credentials,
    lrs_credentials,
    refuse_renamed_credentials,
)

RALPH_HOSTS_KEY = "RALPH_BACKENDS__LRS__ES__HOSTS"
RALPH_AUTH_KEY = "auth.json"


def load_config(path: str) -> Config:
    raw = read_json(path, "config file")
    try:
        return parse_config(raw)
    except ConfigError as error:
        fail(f"the config file {path} is invalid: {error}")


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
