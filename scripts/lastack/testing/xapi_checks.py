"""What breaks the basic xAPI 1.0.3 statement structure: a check for generated and replayed
statements alike."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any


def _is_iri(value: Any) -> bool:
    return isinstance(value, str) and ":" in value and " " not in value


def _agent_problems(agent: Any, where: str) -> list[str]:
    if not isinstance(agent, dict):
        return [f"{where} is not an object"]
    ifis = [k for k in ("mbox", "mbox_sha1sum", "openid", "account") if k in agent]
    if len(ifis) != 1:
        return [f"{where} needs exactly one inverse functional identifier, has {ifis}"]
    account = agent.get("account")
    if account is not None and not (_is_iri(account.get("homePage")) and account.get("name")):
        return [f"{where}.account needs homePage (IRI) and name"]
    return []


def problems(statement: dict[str, Any]) -> list[str]:
    """What breaks the basic xAPI 1.0.3 statement structure (empty list: none found)."""
    found: list[str] = []
    try:
        uuid.UUID(statement.get("id", ""))
    except (ValueError, TypeError, AttributeError):
        found.append("id is not a UUID")
    found += _agent_problems(statement.get("actor"), "actor")
    verb = statement.get("verb") or {}
    if not _is_iri(verb.get("id")):
        found.append("verb.id is not an IRI")
    if not isinstance(verb.get("display", {}), dict):
        found.append("verb.display is not a language map")
    obj = statement.get("object") or {}
    if obj.get("objectType", "Activity") == "Activity" and not _is_iri(obj.get("id")):
        found.append("object.id is not an IRI")
    try:
        stamp = datetime.fromisoformat(statement.get("timestamp", ""))
        if stamp.tzinfo is None:
            found.append("timestamp has no time zone")
    except (TypeError, ValueError):
        found.append("timestamp is not ISO 8601")
    activities = (statement.get("context") or {}).get("contextActivities") or {}
    for key, value in activities.items():
        if key not in ("parent", "grouping", "category", "other"):
            found.append(f"contextActivities.{key} is not an xAPI key")
        elif not isinstance(value, list) or not all(_is_iri(a.get("id")) for a in value):
            found.append(f"contextActivities.{key} must be a list of activities with IRIs")
    score = (statement.get("result") or {}).get("score")
    if score and "scaled" in score and not -1 <= score["scaled"] <= 1:
        found.append("result.score.scaled is outside [-1, 1]")
    return found
