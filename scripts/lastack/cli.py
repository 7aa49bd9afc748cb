"""`lastack` — the project's small CLI; each subcommand lives in its own module.

Usage: python -m lastack <command> [args...]   (or `lastack <command>` in the venv)
"""

from __future__ import annotations

import importlib
import sys

# name: (module:function, one-line help). Modules are imported only when their command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "tools": ("lastack.commands:tools", "build and verify the pinned tools into .tools/"),
    "deps": ("lastack.commands:deps", "vendor subchart archives (registry, else chart cache)"),
    "lock": ("lastack.commands:lock", "rewrite Chart.lock when Chart.yaml's dependencies changed"),
    "render": ("lastack.commands:render", "print the validated full render (helm template)"),
    "lint": ("lastack.lint:main", "helm lint --strict (Helm 3 and 4), ct lint, yamllint, ruff"),
    "bench": ("lastack.bench:main", "print render timings for Helm 3 and Helm 4"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [__doc__.strip(), "", "Commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(usage())
        return 0
    name, args = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"lastack: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module_name, func_name = COMMANDS[name][0].split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    return int(func(args) or 0)
