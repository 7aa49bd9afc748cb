"""release_secrets.py on the metadata of the Secrets it made: Argo CD neither tracks nor
prunes them, and an upgrade never generates credentials beside an earlier name."""

from __future__ import annotations

import pytest

from tests.hooks.secrets_support import DIGEST, config, run, snapshot
from tests.hooks.support import assert_one_sentence_failure, entry

pytestmark = pytest.mark.hooks


def earlier_release_config() -> dict:
    """The config as versions before the Argo CD fix rendered it: the release's instance
    label, no Argo CD annotations."""
    cfg = config()
    cfg["labels"] = {"app.kubernetes.io/part-of": "la-stack", "app.kubernetes.io/instance": "t",
                     "app.kubernetes.io/managed-by": "la-stack-secrets-hook"}
    del cfg["annotations"], cfg["staleLabels"]
    return cfg


class TestReleaseSecrets:
    """Labels, annotations and former names of generated Secrets."""

    # Generated Secrets are not tracked as the Application's and are never pruned.

    def test_should_give_every_generated_secret_the_configured_metadata(self, kube, tmp_path):
        cfg = config()
        assert run(kube, tmp_path, cfg).returncode == 0
        for name, body in kube.secrets.items():
            meta = body["metadata"]
            assert cfg["labels"].items() <= meta["labels"].items(), name
            assert not set(cfg["staleLabels"]) & set(meta["labels"]), name
            assert cfg["annotations"].items() <= meta["annotations"].items(), name

    def test_should_fix_an_earlier_releases_secrets_without_touching_their_data(
            self, kube, tmp_path):
        assert run(kube, tmp_path, earlier_release_config()).returncode == 0
        before = snapshot(kube)
        cfg = config()
        result = run(kube, tmp_path, cfg)
        assert result.returncode == 0, result.stderr
        assert set(kube.secrets) == set(before)
        for name, body in kube.secrets.items():
            assert body["data"] == before[name]["data"], f"{name} changed its data"
            meta = body["metadata"]
            assert "app.kubernetes.io/instance" not in meta["labels"], name
            assert meta["labels"]["la-stack.io/release"] == cfg["labels"]["la-stack.io/release"]
            assert cfg["annotations"].items() <= meta["annotations"].items(), name
        # The derived Secrets keep their digest, so Ralph's bcrypt hashes did not rotate.
        for name in ("t-ralph-env", "t-ralph-auth"):
            assert (kube.secrets[name]["metadata"]["annotations"][DIGEST]
                    == before[name]["metadata"]["annotations"][DIGEST])
        assert "labels and annotations brought up to date" in result.stdout
        kube.calls.clear()
        assert run(kube, tmp_path, cfg).returncode == 0
        assert kube.writes() == []

    def test_should_leave_the_metadata_of_a_secret_it_did_not_make(self, kube, tmp_path):
        kube.put_secret("t-lrs-admin", {"username": "admin", "password": "users-own"},
                        "kubernetes.io/basic-auth")
        kube.secrets["t-lrs-admin"]["metadata"]["labels"] = {"app.kubernetes.io/instance": "t"}
        before = snapshot(kube)["t-lrs-admin"]
        assert run(kube, tmp_path).returncode == 0
        assert kube.secrets["t-lrs-admin"] == before

    # Earlier versions named some generated Secrets `la-stack-…` for every release; an
    # upgrade that now names them after the release must not generate new credentials.

    def renamed(self):
        """The config of this version, and the earlier one's Superset Secret in the cluster."""
        cfg = config()
        entry(cfg, "generic", "t-superset").update({
            "secret": "t-superset-renamed",
            "formerly": {"secret": "t-superset", "key": "supersetWiring.credentialsSecret"}})
        return cfg

    def test_should_stop_before_writing_and_name_the_value(self, kube, tmp_path):
        assert run(kube, tmp_path, earlier_release_config()).returncode == 0
        before = snapshot(kube)
        kube.calls.clear()
        result = run(kube, tmp_path, self.renamed())
        assert_one_sentence_failure(result)
        assert ("set supersetWiring.credentialsSecret to t-superset to keep its credentials"
                in result.stderr)
        assert kube.writes() == [] and snapshot(kube) == before

    def test_should_go_on_when_the_old_name_is_another_releases(self, kube, tmp_path):
        assert run(kube, tmp_path).returncode == 0
        kube.secrets["t-superset"]["metadata"]["labels"]["la-stack.io/release"] = "other"
        result = run(kube, tmp_path, self.renamed())
        assert result.returncode == 0, result.stderr
        assert set(kube.decoded("t-superset-renamed")) == set(
            entry(config(), "generic", "t-superset")["keys"])

    def test_should_go_on_once_the_new_name_exists(self, kube, tmp_path):
        assert run(kube, tmp_path, earlier_release_config()).returncode == 0
        kube.put_secret("t-superset-renamed", kube.decoded("t-superset"), "Opaque")
        before = snapshot(kube)["t-superset-renamed"]["data"]
        result = run(kube, tmp_path, self.renamed())
        assert result.returncode == 0, result.stderr
        assert kube.secrets["t-superset-renamed"]["data"] == before
