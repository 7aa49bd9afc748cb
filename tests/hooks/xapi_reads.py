"""Reading statements back from Ralph the way an xAPI client does."""

from __future__ import annotations

import urllib.parse

STATEMENTS = "/xAPI/statements"


def read_all(ralph_server, query: dict, auth) -> list[dict]:
    """Every page of a GET (Ralph caps a page at 100 and links the next one in `more`)."""
    path = f"{STATEMENTS}?{urllib.parse.urlencode(query)}"
    statements: list[dict] = []
    while path:
        status, body = ralph_server.get(path, auth=auth)
        assert status == 200, body
        statements += body["statements"]
        path = body.get("more") or ""
    return statements
