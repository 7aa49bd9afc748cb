"""The secrets hook's config contract: what the chart renders for release_secrets.py, typed.

Nothing here talks to the network, so every rule can be unit-tested. See README.md beside
this file for the JSON config the chart renders; `parse_config` is its executable form.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

MIN_LENGTH = 6  # ECK refuses file-realm passwords shorter than 6 characters
MAX_LENGTH = 1024
# The program recognises the Secrets it made by this label (every release has set it).
OWNER_LABEL = "app.kubernetes.io/managed-by"
RELEASE_LABEL = "la-stack.io/release"
EARLIER_RELEASE_LABEL = "app.kubernetes.io/instance"  # what earlier versions set instead
RALPH_SCOPES = frozenset({
    "statements/write", "statements/read/mine", "statements/read", "state/write", "state/read",
    "define", "profile/write", "profile/read", "all/read", "all",
})  # fmt: skip
AGENT_IFIS = ("mbox", "mbox_sha1sum", "openid", "account")
INDEX_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
# Ralph checks auth.json's mbox with email-validator, which refuses these special-use
# top-level domains; Ralph then answers 500 to every authenticated request.
REFUSED_MAIL_DOMAINS = ("arpa", "invalid", "local", "localhost", "onion", "test")
_MAILTO = re.compile(r"^mailto:[^@\s]+@([^@\s]+\.)*([^@\s.]+)$")
_SECRET_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


class ConfigError(ValueError):
    """The config file breaks the contract; the message is one sentence."""


@dataclass(frozen=True)
class FormerName:
    """The name an earlier version gave a generated Secret, and the value that keeps it."""

    secret: str
    key: str


@dataclass(frozen=True)
class EsUser:
    secret: str
    username: str
    roles: tuple[str, ...]
    existing_secret: str = ""


@dataclass(frozen=True)
class LrsAccount:
    secret: str
    username: str
    scopes: tuple[str, ...]
    agent: dict[str, Any]
    existing_secret: str = ""
    target: str = ""  # the index Ralph stores this account's statements in (default: its own)
    formerly: FormerName | None = None

    def ralph_fields(self) -> dict[str, Any]:
        """What auth.json says of the account besides its credentials."""
        fields: dict[str, Any] = {"scopes": list(self.scopes), "agent": dict(self.agent)}
        if self.target:
            fields["target"] = self.target
        return fields


@dataclass(frozen=True)
class GenericSecret:
    secret: str
    keys: dict[str, int]
    existing_secret: str = ""
    formerly: FormerName | None = None


@dataclass(frozen=True)
class RalphWiring:
    env_secret: str
    auth_secret: str
    es_url: str
    es_user: str  # the `secret` of the esUsers entry Ralph connects as
    deployments: tuple[str, ...] = ()  # rolled when either Secret's data change


@dataclass(frozen=True)
class Metadata:
    """What the Secrets this program made carry besides their data."""

    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    stale_labels: tuple[str, ...] = ()  # set by earlier versions, removed when seen

    def owns(self, labels: dict[str, str]) -> bool:
        return OWNER_LABEL in labels and labels[OWNER_LABEL] == self.labels.get(OWNER_LABEL)

    def of_this_release(self, labels: dict[str, str]) -> bool:
        """Made by this program for this release, by this version or an earlier one."""
        release = labels.get(RELEASE_LABEL, labels.get(EARLIER_RELEASE_LABEL))
        return self.owns(labels) and release == self.labels.get(RELEASE_LABEL)

    def applied(
        self, labels: dict[str, str], annotations: dict[str, str]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """`labels` and `annotations` as they must be: stale labels gone, ours set, the rest
        (anyone else's) kept."""
        kept = {k: v for k, v in labels.items() if k not in self.stale_labels}
        return {**kept, **self.labels}, {**annotations, **self.annotations}

    def is_stale_on(self, secret: Any) -> bool:
        """Whether a Secret (anything with labels and annotations) lacks what `applied` gives."""
        return self.applied(secret.labels, secret.annotations) != (
            secret.labels, secret.annotations)

    def conform(self, secret: Any) -> None:
        secret.labels, secret.annotations = self.applied(secret.labels, secret.annotations)


@dataclass(frozen=True)
class Config:
    metadata: Metadata = field(default_factory=Metadata)
    es_users: tuple[EsUser, ...] = ()
    lrs_accounts: tuple[LrsAccount, ...] = ()
    generic: tuple[GenericSecret, ...] = ()
    ralph: RalphWiring | None = None


def _text(entry: dict[str, Any], key: str, where: str, required: bool = True) -> str:
    value = entry.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ConfigError(f"{where}.{key} must be a string.")
    if required and not value:
        raise ConfigError(f"{where}.{key} must not be empty.")
    return value


def _secret_names(entry: dict[str, Any], where: str) -> tuple[str, str]:
    existing = _text(entry, "existingSecret", where, required=False)
    secret = _text(entry, "secret", where, required=not existing)
    for name in filter(None, (secret, existing)):
        if len(name) > 253 or not _SECRET_NAME.match(name):
            raise ConfigError(f"{where}: {name!r} is not a valid Secret name.")
    return secret, existing


def _names(entry: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    """An optional list of object names (Deployments and Secrets share the DNS-name rule)."""
    names = entry.get(key) or []
    if not isinstance(names, list) or not all(
        isinstance(n, str) and len(n) <= 253 and _SECRET_NAME.match(n) for n in names
    ):
        raise ConfigError(f"{where}.{key} must be a list of object names.")
    return tuple(names)


def _former_name(entry: dict[str, Any], where: str) -> FormerName | None:
    raw = entry.get("formerly")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}.formerly must be an object with secret and key.")
    secret, key = _text(raw, "secret", f"{where}.formerly"), _text(raw, "key", f"{where}.formerly")
    if len(secret) > 253 or not _SECRET_NAME.match(secret):
        raise ConfigError(f"{where}.formerly: {secret!r} is not a valid Secret name.")
    return FormerName(secret, key)


def _entries(raw: dict[str, Any], key: str) -> list[dict[str, Any]]:
    entries = raw.get(key) or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{key} must be a list of objects.")
    return entries


def _agent(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}.agent must be an object with one xAPI IFI.")
    ifis = [key for key in AGENT_IFIS if value.get(key)]
    if len(ifis) != 1:
        raise ConfigError(f"{where}.agent must have exactly one of {', '.join(AGENT_IFIS)}.")
    if "mbox" in ifis:
        match = _MAILTO.match(str(value["mbox"]))
        if not match:
            raise ConfigError(f"{where}.agent.mbox must look like 'mailto:name@domain'.")
        if match.group(2).lower() in REFUSED_MAIL_DOMAINS:
            raise ConfigError(
                f"{where}.agent.mbox ends in '.{match.group(2)}', a special-use domain that "
                f"Ralph's email check refuses (every request would fail); use a domain such "
                f"as example.org."
            )
    return dict(value)


def _string_map(raw: dict[str, Any], key: str) -> dict[str, str]:
    value = raw.get(key) or {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigError(f"{key} must map strings to strings.")
    return dict(value)


def _metadata(raw: dict[str, Any]) -> Metadata:
    labels = _string_map(raw, "labels")
    if not labels.get(OWNER_LABEL):
        raise ConfigError(
            f"labels must set {OWNER_LABEL}: it marks the Secrets this program made."
        )
    stale = raw.get("staleLabels") or []
    if not isinstance(stale, list) or not all(isinstance(k, str) and k for k in stale):
        raise ConfigError("staleLabels must be a list of label keys.")
    if set(stale) & set(labels):
        raise ConfigError("staleLabels must not name a key that labels sets.")
    return Metadata(labels, _string_map(raw, "annotations"), tuple(stale))


def parse_config(raw: Any) -> Config:
    """Validate the decoded config JSON and return it typed; ConfigError names the first fault."""
    if not isinstance(raw, dict):
        raise ConfigError("the config must be a JSON object.")
    metadata = _metadata(raw)

    es_users = []
    for i, entry in enumerate(_entries(raw, "esUsers")):
        where = f"esUsers[{i}]"
        secret, existing = _secret_names(entry, where)
        roles = entry.get("roles") or []
        if not isinstance(roles, list) or not all(isinstance(r, str) and r for r in roles):
            raise ConfigError(f"{where}.roles must be a list of role names.")
        username = _text(entry, "username", where, required=not existing)
        es_users.append(EsUser(secret, username, tuple(roles), existing))

    lrs_accounts = []
    for i, entry in enumerate(_entries(raw, "lrsAccounts")):
        where = f"lrsAccounts[{i}]"
        secret, existing = _secret_names(entry, where)
        scopes = entry.get("scopes") or []
        if not isinstance(scopes, list) or not scopes:
            raise ConfigError(f"{where}.scopes must be a non-empty list.")
        unknown = [s for s in scopes if s not in RALPH_SCOPES]
        if unknown:
            raise ConfigError(f"{where}.scopes has {unknown[0]!r}, which Ralph does not know.")
        username = _text(entry, "username", where, required=not existing)
        agent = _agent(entry.get("agent"), where)
        target = _text(entry, "target", where, required=False)
        if target and not INDEX_NAME.match(target):
            raise ConfigError(f"{where}.target must be an index name, not {target!r}.")
        lrs_accounts.append(LrsAccount(secret, username, tuple(scopes), agent, existing,
                                       target, _former_name(entry, where)))

    generic = []
    for i, entry in enumerate(_entries(raw, "generic")):
        where = f"generic[{i}]"
        secret, existing = _secret_names(entry, where)
        keys = entry.get("keys") or {}
        if not isinstance(keys, dict) or not keys:
            raise ConfigError(f"{where}.keys must map key names to lengths.")
        for key, length in keys.items():
            if not isinstance(length, int) or not MIN_LENGTH <= length <= MAX_LENGTH:
                raise ConfigError(
                    f"{where}.keys.{key} must be a length from {MIN_LENGTH} to {MAX_LENGTH}."
                )
        generic.append(GenericSecret(secret, dict(keys), existing, _former_name(entry, where)))

    names = [s.secret for s in (*es_users, *lrs_accounts, *generic) if not s.existing_secret]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"the Secret name {duplicates[0]!r} is used by two entries.")

    ralph = None
    raw_ralph = raw.get("ralph")
    if raw_ralph:
        if not isinstance(raw_ralph, dict):
            raise ConfigError("ralph must be an object.")
        ralph = RalphWiring(
            env_secret=_text(raw_ralph, "envSecret", "ralph"),
            auth_secret=_text(raw_ralph, "authSecret", "ralph"),
            es_url=_text(raw_ralph, "esUrl", "ralph"),
            es_user=_text(raw_ralph, "esUser", "ralph"),
            deployments=_names(raw_ralph, "deployments", "ralph"),
        )
        if ralph.es_user not in {u.secret for u in es_users}:
            raise ConfigError(
                f"ralph.esUser {ralph.es_user!r} is not the secret of an esUsers entry."
            )
        if not lrs_accounts:
            raise ConfigError("ralph needs at least one entry in lrsAccounts.")
        for url in ralph.es_url.split(","):
            parts = urllib.parse.urlsplit(url.strip())
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                raise ConfigError(f"ralph.esUrl {url!r} is not an http(s) URL.")
            if parts.username or parts.password:
                raise ConfigError("ralph.esUrl must not carry credentials; the hook adds them.")
        if ralph.env_secret == ralph.auth_secret:
            raise ConfigError("ralph.envSecret and ralph.authSecret must differ.")
    return Config(metadata, tuple(es_users), tuple(lrs_accounts), tuple(generic), ralph)
