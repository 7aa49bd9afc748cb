"""No secret on any command line: a container's `command`/`args` and the shell scripts our
containers run pass credentials by environment or stdin, never as an argument (which `ps`,
`/proc/<pid>/cmdline` and node audit logs show)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import jmespath
import pytest

from lastack.chart.render import render_chart
from tests.helpers import dicts_in
from tests.render.support import PROFILE_IDS, PROFILES

# Variable names that hold a credential (Ralph's ES hosts URL carries user:password@).
SENSITIVE_NAME = re.compile(r"PASS|SECRET|TOKEN|CREDENTIAL|API_?KEY|HOSTS", re.IGNORECASE)
# `$(NAME)` is expanded by the kubelet into the argument itself, whatever runs it.
KUBELET_REFERENCE = re.compile(r"(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
SHELL_REFERENCE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
SECRET_OPTION = re.compile(r"^--?[a-z-]*(password|passwd|secret|token)\b", re.IGNORECASE)
# Builtins run inside the shell: their arguments never reach a process's argv.
SHELL_BUILTINS = frozenset({"printf", "echo", "export", "local", "read", "test", "[", ":"})
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def simple_commands(script: str) -> Iterator[list[str]]:
    """The words of each simple command of a shell script, assignments stripped. Splits on
    newlines, `;`, `|`, `&&` and `||` without parsing quotes: enough for the scripts we ship."""
    joined = re.sub(r"\\\n|\|[ \t]*\n", lambda m: " " if m.group().startswith("\\") else "|",
                    script)
    for line in joined.splitlines():
        if line.lstrip().startswith("#"):
            continue
        for part in re.split(r"&&|\|\||[;|]", line):
            words = part.split()
            while words and ASSIGNMENT.match(words[0]):
                words.pop(0)
            if words:
                yield words


def secret_references(script: str, secret_names: set[str]) -> list[str]:
    """Each argument of a non-builtin command that expands a credential variable."""
    found = []
    for words in simple_commands(script):
        if words[0] in SHELL_BUILTINS:
            continue
        for word in words[1:]:
            for name in SHELL_REFERENCE.findall(word):
                if name in secret_names or SENSITIVE_NAME.search(name):
                    found.append(f"{' '.join(words[:2])} … {word}")
    return found


def command_line_faults(container: dict) -> list[str]:
    secret_env = {e["name"] for e in container.get("env", [])
                  if (e.get("valueFrom") or {}).get("secretKeyRef")}
    argv = [str(w) for w in (container.get("command") or []) + (container.get("args") or [])]
    faults = []
    for word in argv:
        faults += [f"$({name})" for name in KUBELET_REFERENCE.findall(word)
                   if name in secret_env or SENSITIVE_NAME.search(name)]
        if SECRET_OPTION.match(word):
            faults.append(word)
        faults += secret_references(word, secret_env)  # `sh -c '<script>'`
    return faults


def containers(obj: dict) -> Iterator[dict]:
    for spec in dicts_in(obj):
        if isinstance(spec.get("containers"), list):
            yield from spec["containers"] + (spec.get("initContainers") or [])


class TestTheChecks:
    """The checks below flag what they must: a test that cannot fail proves nothing."""

    @pytest.mark.parametrize("container", [
        {"command": ["superset", "fab", "create-admin", "--password", "$(ADMIN)"],
         "env": [{"name": "ADMIN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]},
        {"command": ["/bin/sh", "-c", 'superset fab create-admin --password "$ADMIN_PASSWORD"']},
        {"args": ["--token=abc"]},
        {"command": ["sh", "-c", "php cfg.php --name=x \\\n  --set=${LRS_PASSWORD}"]},
    ])
    def test_should_flag_a_secret_on_a_command_line(self, container):
        assert command_line_faults(container)

    @pytest.mark.parametrize("script", [
        "printf '%s\\n' \"$DB_PASS\" | psql -U superset",
        "PGPASSWORD=\"$DB_PASS\" psql -h db",
        'dockerize -wait "tcp://$DB_HOST:$DB_PORT" -timeout 600s',
    ])
    def test_should_allow_stdin_environment_and_plain_values(self, script):
        assert command_line_faults({"command": ["/bin/sh", "-c", script]}) == []


class TestRenderedCommandLines:
    """Every container of every rendered object, per values profile."""

    @pytest.mark.parametrize("profile", PROFILES, ids=PROFILE_IDS)
    def test_should_carry_no_secret_in_command_or_args(self, helm, profile):
        objects = render_chart(helm=helm, values_files=[profile] if profile else [])
        faults = {f"{o['kind']}/{o['metadata']['name']}/{c['name']}": command_line_faults(c)
                  for o in objects for c in containers(o)}
        assert {k: v for k, v in faults.items() if v} == {}


class TestSupersetScripts:
    """The scripts the operator runs from the `Superset` resource: the bootstrap script every
    container sources and the lifecycle init command, which creates the admin."""

    def resource(self, helm) -> dict:
        objects = render_chart(helm=helm, show_only=["templates/superset/superset.yaml"],
                               subcharts=())
        return objects[0]

    @pytest.mark.parametrize("path", ["spec.bootstrapScript", "spec.lifecycle.init.command[2]"])
    def test_should_pass_no_secret_as_an_argument(self, helm, path):
        script = jmespath.search(path, self.resource(helm))
        assert script
        assert secret_references(script, {"LA_STACK_ADMIN_PASSWORD"}) == []

    def test_should_give_the_admin_password_on_stdin(self, helm):
        script = jmespath.search("spec.lifecycle.init.command[2]", self.resource(helm))
        (create,) = [w for w in simple_commands(script) if "create-admin" in w]
        assert "--password" not in create
        assert any(w[0] == "printf" and '"$LA_STACK_ADMIN_PASSWORD"' in w
                   for w in simple_commands(script))
