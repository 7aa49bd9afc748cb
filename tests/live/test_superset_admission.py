"""The real kube-apiserver admits every `Superset` and CloudNativePG resource the chart
renders, and enforces the CRDs' CEL rules, which the render tier's JSON Schema cannot see.

Each object is applied with a server-side dry run: the API server runs the full admission
(schema, CEL `x-kubernetes-validations`) without storing anything. The CRDs are those of
the pinned superset-operator and CloudNativePG; the local control plane installs them at
start. On a cluster named with `--kubeconfig` the test runs only where both APIs are
already served (its CRDs are not ours to install).
"""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from lastack.chart.render import render_chart
from lastack.paths import VALUES_DIR
from lastack.testing.helm_release import kubectl

OWN = ["templates/superset/superset.yaml", "templates/superset/metastore.yaml"]
APIS = {"superset.apache.org": "v1alpha1", "postgresql.cnpg.io": "v1"}
BACKUP = {"superset": {"metastore": {"backup": {
    "enabled": True, "destinationPath": "s3://bucket/superset-db",
    "s3Credentials": {"secretName": "backup-creds"}}}}}
IMPORT = {"superset": {"metastore": {"import": {
    "enabled": True, "host": "la-stack-postgresql", "passwordSecret": {"name": "old"}}}}}
CASES = {
    "defaults": ((), None),
    "demo": ((VALUES_DIR / "demo.yaml",), None),
    "production": ((VALUES_DIR / "production.yaml",), None),
    "production-backup": ((VALUES_DIR / "production.yaml",), BACKUP),
    "import": ((), IMPORT),
}


@pytest.fixture(scope="module")
def superset_apis(api: client.ApiClient) -> None:
    groups = {g.name: {v.version for v in g.versions}
              for g in client.ApisApi(api).get_api_versions().groups}
    missing = [f"{g}/{v}" for g, v in APIS.items() if v not in groups.get(g, set())]
    if missing:
        pytest.skip(f"the cluster does not serve {', '.join(missing)}: install the CloudNativePG "
                    "operator and the superset-operator CRD, or run on the local control "
                    "plane, which installs their CRDs")


def rendered(values_files: tuple[Path, ...], values: dict | None) -> list[dict]:
    return render_chart(values_files=list(values_files), values=values, show_only=OWN,
                        subcharts=())


def dry_run(env: dict[str, str], namespace: str, obj: dict) -> subprocess.CompletedProcess[str]:
    return kubectl(env, "apply", "--server-side", "--dry-run=server",
                   "--field-manager=la-stack-live", "-n", namespace, "-f", "-",
                   stdin=yaml.safe_dump(obj), check=False)


def the_superset(values_files: tuple[Path, ...] = ()) -> dict:
    return next(o for o in rendered(values_files, None) if o["kind"] == "Superset")


@pytest.mark.usefixtures("superset_apis")
@pytest.mark.parametrize("case", list(CASES))
def test_every_rendered_resource_is_admitted(case: str, namespace: str,
                                             tool_env: dict[str, str]) -> None:
    objects = rendered(*CASES[case])
    kinds = {o["kind"] for o in objects}
    assert {"Superset", "Cluster"} <= kinds, kinds
    for obj in objects:
        proc = dry_run(tool_env, namespace, obj)
        assert proc.returncode == 0, f"{obj['kind']}/{obj['metadata']['name']}: {proc.stderr}"


def inline_valkey_password(cr: dict) -> dict:
    cr["spec"]["valkey"].pop("passwordFrom")
    cr["spec"]["valkey"]["password"] = "not-a-secret"
    return cr


def uri_from_with_host(cr: dict) -> dict:
    cr["spec"]["metastore"].update(host="la-stack-superset-db-rw", database="superset",
                                   username="superset")
    return cr


BAD = {
    "inline-valkey-password": (
        inline_valkey_password,
        "valkey.password is only allowed when environment is Development"),
    "uri-from-with-host": (
        uri_from_with_host, "uriFrom and structured fields are mutually exclusive"),
}


@pytest.mark.usefixtures("superset_apis")
@pytest.mark.parametrize("case", list(BAD))
def test_bad_resources_are_refused_with_the_cel_message(case: str, namespace: str,
                                                        tool_env: dict[str, str]) -> None:
    spoil, message = BAD[case]
    cr = spoil(the_superset())
    proc = dry_run(tool_env, namespace, cr)
    assert proc.returncode != 0, proc.stdout
    assert message in proc.stderr, proc.stderr


@pytest.mark.usefixtures("superset_apis")
def test_the_inline_password_rule_is_what_refuses_it(namespace: str,
                                                     tool_env: dict[str, str]) -> None:
    """The same resource in Development is admitted: the refusal above comes from the rule
    on the environment, not from anything else in the object."""
    cr = inline_valkey_password(copy.deepcopy(the_superset()))
    cr["spec"]["environment"] = "Development"
    proc = dry_run(tool_env, namespace, cr)
    assert proc.returncode == 0, proc.stderr
