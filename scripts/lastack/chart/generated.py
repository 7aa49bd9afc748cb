"""Files the tooling generates and commits: write them, or check the committed copy."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from lastack.paths import REPO_ROOT


def write_or_check(target: Path, text: str, check: bool, make_target: str,
                   root: Path = REPO_ROOT) -> int:
    """Write `text` to `target` when it changed; with `check`, exit 1 if it is stale.
    Messages name the file relative to `root`."""
    shown = target.relative_to(root)
    current = target.read_text() if target.exists() else None
    if check:
        if current != text:
            print(f"error: {shown} is stale; run `make {make_target}`", file=sys.stderr)
            return 1
        return 0
    if current != text:
        target.write_text(text)
        print(f"wrote {shown}")
    return 0


def main(args: list[str], make_target: str, description: str, what: str, target: Path,
         generate: Callable[[], str], errors: tuple[type[Exception], ...],
         root: Path = REPO_ROOT) -> int:
    """The command behind `make <make_target>`: write `target`, or `--check` it (messages
    name it relative to `root`)."""
    parser = argparse.ArgumentParser(prog=f"lastack {make_target}", description=description)
    parser.add_argument("--check", action="store_true",
                        help=f"exit 1 when the committed {what} differs from the generated one")
    opts = parser.parse_args(args)
    try:
        text = generate()
    except errors as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return write_or_check(target, text, opts.check, make_target, root)
