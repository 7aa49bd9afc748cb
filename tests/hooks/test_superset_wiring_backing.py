"""superset_wiring.py's Superset on its backing services: what the wiring made is rows
in the PostgreSQL metastore (reached through the CloudNativePG `uri` as the Cluster's
`app` owner) and keys in Valkey under the operator's prefixes; a metastore or Valkey it
cannot use stops Superset, or the hook at its deadline, naming it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lastack.net import free_port
from lastack.testing.services import superset
from lastack.testing.services.processes import ServiceError
from tests.hooks.superset_support import (
    DATABASE,
    EXPLORE_CACHE,
    INDEX,
    bundle_docs,
    statements_dataset_id,
    valkey_of,
    wire,
)
from tests.hooks.support import assert_one_sentence_failure, cnpg_password

pytestmark = pytest.mark.hooks


class TestSupersetWiring:
    """Its Superset's metastore and Valkey."""

    # What the wiring made is rows in PostgreSQL, which Superset reached through the
    # CloudNativePG `uri` as the Cluster's `app` owner (read here with psql, as a DBA would).

    def test_should_connect_as_the_clusters_app_user(self, wired, postgres_server, metastore):
        sessions = postgres_server.query(
            "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = 'app'")
        assert [metastore["username"]] in sessions
        owners = postgres_server.query(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'", "app")
        assert owners == [["app"]]

    def test_should_store_the_database_without_the_readers_password(
        self, wired, postgres_server, es_stack
    ):
        (bundle_db,) = bundle_docs("databases/*.yaml")
        rows = postgres_server.query(
            f"SELECT uuid, row_to_json(dbs)::text FROM dbs WHERE database_name = '{DATABASE}'",
            "app")  # fmt: skip
        assert [row[0] for row in rows] == [bundle_db["uuid"]]
        _, password = es_stack.login("t-es-superset")
        assert password not in rows[0][1], "encrypted with SUPERSET_SECRET_KEY, never in clear"

    def test_should_store_the_dataset_and_the_dashboards(self, wired, postgres_server):
        tables = postgres_server.query(
            "SELECT t.table_name FROM tables t JOIN dbs d ON d.id = t.database_id "
            f"WHERE d.database_name = '{DATABASE}'", "app")  # fmt: skip
        assert tables == [[INDEX]]
        dashboards = dict(postgres_server.query("SELECT slug, dashboard_title FROM dashboards",
                                                "app"))  # fmt: skip
        assert dashboards.items() >= {
            (d["slug"], d["dashboard_title"]) for d in bundle_docs("dashboards/*.yaml")}
        charts = {row[0] for row in postgres_server.query("SELECT slice_name FROM slices", "app")}
        assert charts >= {c["slice_name"] for c in bundle_docs("charts/*.yaml")}

    # Superset keeps its state in Valkey under the operator's prefixes, with the generated
    # password (redis-cli authenticates through REDISCLI_AUTH).

    def test_should_keep_an_explore_state_in_valkey(self, wired, valkey_server):
        api = wired["api"]
        dataset_id = statements_dataset_id(api)
        form = {"datasource": f"{dataset_id}__table", "viz_type": "table"}
        status, body = api.request("POST", "/api/v1/explore/form_data", {
            "datasource_id": dataset_id, "datasource_type": "table",
            "form_data": json.dumps(form)})  # fmt: skip
        assert status == 201, body
        db, prefix = EXPLORE_CACHE
        assert valkey_server.keys(db, prefix + "*"), "the state is a key in Valkey"
        status, stored = api.request("GET", f"/api/v1/explore/form_data/{body['key']}")
        assert status == 200 and json.loads(stored["form_data"])["viz_type"] == "table", stored
        valkey_server.cli("FLUSHDB", db=db)
        status, _ = api.request("GET", f"/api/v1/explore/form_data/{body['key']}")
        assert status == 404, "read from Valkey, nowhere else"

    # A Superset that cannot use its metastore or its Valkey fails to start, saying which
    # and why, without the password.

    def start(self, **options: Any) -> str:
        with pytest.raises(ServiceError) as failure, superset.SupersetServer(**options):
            pass
        return str(failure.value)

    def test_should_name_valkey_on_a_wrong_password(self, superset_server, metastore,
                                                    valkey_server):  # fmt: skip
        message = self.start(metastore_uri=metastore["uri"],
                             valkey=valkey_of(valkey_server, "not-the-password"))
        assert f"could not use Valkey at 127.0.0.1:{valkey_server.port}" in message
        assert "invalid username-password pair" in message
        assert "not-the-password" not in message

    def test_should_name_the_metastore_when_postgresql_is_unreachable(
        self, superset_server, metastore, valkey_server
    ):
        closed = free_port()
        uri = metastore["uri"].replace(f":{metastore['port']}/", f":{closed}/")
        message = self.start(metastore_uri=uri, valkey=valkey_of(valkey_server))
        assert f"could not use its metastore postgresql://app:***@127.0.0.1:{closed}/app" in (
            message)
        assert "Connection refused" in message
        assert metastore["password"] not in message

    def test_should_name_the_metastore_on_a_wrong_password(self, superset_server, metastore,
                                                           valkey_server):  # fmt: skip
        uri = metastore["uri"].replace(metastore["password"], "wrong")
        message = self.start(metastore_uri=uri, valkey=valkey_of(valkey_server))
        assert 'password authentication failed for user "app"' in message

    def test_should_give_up_at_the_deadline_when_the_metastore_goes_away(
        self, es_stack, metastore, postgres_server, valkey_server, tmp_path
    ):
        """A metastore lost under a running Superset (a failed-over or stopped Cluster):
        Superset still answers /health, its login fails, and the hook says so at its
        deadline."""
        template, template_role = superset.ensure_template(postgres_server)
        password = cnpg_password()
        postgres_server.app_database("lost", "lost", password, template, template_role)
        uri = metastore["uri"].replace(f"app:{metastore['password']}@", f"lost:{password}@")
        with superset.SupersetServer(metastore_uri=uri.replace("/app", "/lost"),
                                     valkey=valkey_of(valkey_server)) as server:  # fmt: skip
            postgres_server.query("ALTER ROLE lost NOLOGIN")
            postgres_server.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE usename = 'lost'")  # fmt: skip
            result = wire(es_stack, server, tmp_path, {"DEADLINE_SECONDS": "8"})
        line = assert_one_sentence_failure(result, "gave up logging in to Superset",
                                           "DEADLINE_SECONDS")  # fmt: skip
        assert "POST /api/v1/security/login answered 500" in line, line

    def test_should_keep_the_backing_passwords_out_of_supersets_log(self,
        wired, superset_server, metastore, es_stack
    ):
        assert superset_server.log_file is not None
        log = superset_server.log_file.read_text(errors="replace")
        assert "POST /api/v1/security/login" in log, "the log is the server's"
        for secret in (metastore["password"], es_stack.secret("t-superset")["REDIS_PASSWORD"]):
            assert secret not in log
