"""The credentials of the secrets hook and the values derived from them: passwords, Ralph's
hosts URL and auth.json, and the digests that say when a derived Secret is stale.

Nothing here talks to the network, so every rule can be unit-tested.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import string
import urllib.parse
from dataclasses import dataclass
from typing import Any

import bcrypt
from secrets_config import MIN_LENGTH, ConfigError, LrsAccount

URL_SAFE_ALPHABET = string.ascii_letters + string.digits + "-_"
PASSWORD_LENGTH = 32


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def random_password(length: int = PASSWORD_LENGTH) -> str:
    """A random string of URL-safe characters (no escaping needed in URLs, YAML or shells)."""
    if length < MIN_LENGTH:
        raise ValueError(f"passwords need at least {MIN_LENGTH} characters")
    return "".join(secrets.choice(URL_SAFE_ALPHABET) for _ in range(length))


def hosts_with_credentials(es_url: str, credentials: Credentials) -> str:
    """Insert URL-encoded `user:password@` into each comma-separated Elasticsearch URL.

    Ralph's client options forbid extra keys, so the URL is the only place for credentials;
    reserved characters (@ : / % ? #) must be percent-encoded or the URL splits wrongly.
    """
    userinfo = (
        urllib.parse.quote(credentials.username, safe="")
        + ":"
        + urllib.parse.quote(credentials.password, safe="")
    )
    hosts = []
    for url in es_url.split(","):
        parts = urllib.parse.urlsplit(url.strip())
        netloc = f"{userinfo}@{parts.netloc}"
        hosts.append(urllib.parse.urlunsplit(parts._replace(netloc=netloc)))
    return ",".join(hosts)


def bcrypt_hash(password: str, rounds: int = 12) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def auth_entries(
    accounts: list[tuple[LrsAccount, Credentials]], rounds: int = 12
) -> list[dict[str, Any]]:
    """The entries of Ralph's auth.json: username, bcrypt hash, scopes, agent, target."""
    return [
        {
            "username": credentials.username,
            "hash": bcrypt_hash(credentials.password, rounds),
            **account.ralph_fields(),
        }
        for account, credentials in accounts
    ]


def check_unique_usernames(accounts: list[tuple[LrsAccount, Credentials]]) -> None:
    """Ralph picks the first auth.json entry of a username, so a clash would hide an account."""
    usernames = [credentials.username for _, credentials in accounts]
    duplicate = next((u for u in usernames if usernames.count(u) > 1), None)
    if duplicate:
        raise ConfigError(f"two LRS accounts share the username {duplicate!r}.")


def auth_json(accounts: list[tuple[LrsAccount, Credentials]], rounds: int = 12) -> str:
    check_unique_usernames(accounts)
    return json.dumps(auth_entries(accounts, rounds), indent=2) + "\n"


def inputs_digest(inputs: Any) -> str:
    """sha256 of the canonical JSON of a derived Secret's inputs (stored in an annotation)."""
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def env_inputs(es_url: str, credentials: Credentials) -> dict[str, Any]:
    return {"esUrl": es_url, "username": credentials.username, "password": credentials.password}


def auth_inputs(accounts: list[tuple[LrsAccount, Credentials]]) -> list[dict[str, Any]]:
    return [
        {"username": credentials.username, "password": credentials.password,
         **account.ralph_fields()}
        for account, credentials in accounts
    ]
