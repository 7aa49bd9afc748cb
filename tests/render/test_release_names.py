"""Release names: any release name installs with the defaults, every name la-stack creates
follows the release, and the few names the upstream charts take only as literals are the
ones `values/second-release.yaml` sets, so two releases can share a namespace."""

from __future__ import annotations

import json

import pytest

from lastack.chart.render import find, render_chart
from lastack.paths import VALUES_DIR

SECRETS_HOOK = ["templates/secrets/secrets-configmap.yaml", "templates/secrets/secrets-rbac.yaml"]
SECOND_RELEASE = VALUES_DIR / "second-release.yaml"
FORTY_CHARACTERS = "learning-analytics-of-the-faculty-of-law"
# What the eck-elasticsearch and ralph charts (and Moodle's admin Secret) take only as
# literals, with the default values: the chart README's "Two releases in one namespace".
LITERAL_DEFAULTS = {
    ("Elasticsearch", "la-stack"),
    ("Secret", "la-stack-es-roles"),
    ("Secret", "la-stack-es-ralph"),
    ("Secret", "la-stack-es-superset"),
    ("Secret", "la-stack-es-bootstrap"),
    ("Secret", "la-stack-ralph-es"),
    ("Secret", "la-stack-ralph-auth"),
    ("Secret", "la-stack-moodle"),
    ("ConfigMap", "la-stack-ralph-env"),
    ("ConfigMap", "la-stack-ralph-lrs"),
    ("ConfigMap", "la-stack-ralph-logging"),
}

# The API server's name limits where they are below 253: a Service's DNS label, a Job's
# name in its Pods' job-name label, the Superset and CloudNativePG resources' own rules.
NAME_LIMITS = {"Service": 63, "Job": 63, "CronJob": 52, "Superset": 40, "Cluster": 50}


def generated_secrets(objects: list[dict]) -> set[tuple[str, str]]:
    """The Secrets the secrets hook creates at install: they are not in the manifest."""
    config = json.loads(next(
        cm["data"]["secrets.json"] for cm in find(objects, "ConfigMap")
        if cm["metadata"]["name"].endswith("-secrets-hook")))
    names = {entry["secret"]
             for key in ("esUsers", "lrsAccounts", "generic") for entry in config[key]}
    names |= {config["ralph"]["envSecret"], config["ralph"]["authSecret"]}
    return {("Secret", name) for name in names}


def release_names(release: str, helm: str, values_files=()) -> set[tuple[str, str]]:
    """(kind, name) of everything a release puts in its namespace, the generated Secrets
    included; rendering validates every object."""
    objects = render_chart(helm=helm, name=release, values_files=values_files)
    return {(o["kind"], o["metadata"]["name"]) for o in objects} | generated_secrets(objects)


class TestReleaseNames:
    """Names derived from the release, for defaults and for a second release."""

    @pytest.mark.parametrize("release", ["la-stack", "lrs", FORTY_CHARACTERS])
    def test_should_install_any_release_name_with_the_defaults(self, helm, release):
        names = release_names(release, helm)
        assert ("Secret", f"{release}-mariadb") in names  # the name the Moodle chart reads
        too_long = {(kind, name) for kind, name in names
                    if len(name) > NAME_LIMITS.get(kind, 253)}
        assert too_long == set()

    @pytest.mark.parametrize("release", ["lrs", FORTY_CHARACTERS])
    def test_should_name_everything_after_the_release_but_the_upstream_literals(
            self, helm, release):
        names = release_names(release, helm)
        others = {(kind, name) for kind, name in names if not name.startswith(release)}
        assert others <= LITERAL_DEFAULTS, others - LITERAL_DEFAULTS
        assert ("Secret", "la-stack-es-ralph") in others  # the literals stay what they were

    def test_should_keep_the_default_names_of_a_release_named_la_stack(self, helm):
        """An upgrade from an earlier version renames nothing, so it loses nothing."""
        names = release_names("la-stack", helm)
        assert {("Secret", "la-stack-superset"), ("Secret", "la-stack-mariadb"),
                ("Secret", "la-stack-lrs-moodle"), ("Secret", "la-stack-lrs-admin")} <= names
        assert not [n for n in names if n[0] == "Superset" and n[1] != "la-stack-dashboards"]

    def test_should_tell_the_secrets_hook_what_earlier_versions_named(self, helm):
        """Release `lrs` of an earlier version had `la-stack-superset` and the two
        `la-stack-lrs-…` accounts; the hook must be able to look for them (and stop)."""
        objects = render_chart(helm=helm, name="lrs", show_only=SECRETS_HOOK)
        config = json.loads(find(objects, "ConfigMap")[0]["data"]["secrets.json"])
        former = {e["secret"]: e["formerly"]["secret"]
                  for e in config["lrsAccounts"] + config["generic"] if "formerly" in e}
        assert former == {"lrs-superset": "la-stack-superset",
                          "lrs-lrs-moodle": "la-stack-lrs-moodle",
                          "lrs-lrs-admin": "la-stack-lrs-admin"}
        readable = next(rule["resourceNames"] for rule in find(objects, "Role")[0]["rules"]
                        if rule["verbs"] == ["get"])
        assert set(former.values()) <= set(readable)

    def test_should_name_a_second_release_after_itself_with_its_values_file(self, helm):
        names = release_names("la-stack-b", helm, [SECOND_RELEASE])
        assert {name for _, name in names if not name.startswith("la-stack-b")} == set()

    @pytest.mark.parametrize("profile", [None, VALUES_DIR / "demo.yaml"], ids=["defaults", "demo"])
    def test_should_share_no_name_with_a_second_release_in_the_namespace(self, helm, profile):
        profiles = [profile] if profile else []
        first = release_names("la-stack", helm, profiles)
        second = release_names("la-stack-b", helm, [*profiles, SECOND_RELEASE])
        assert first & second == set()
