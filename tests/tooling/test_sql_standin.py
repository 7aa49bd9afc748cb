"""The SQLite stand-in for Elasticsearch SQL: one row per statement, the dataset's columns."""

from __future__ import annotations

import sqlite3

import pytest

from lastack.testing import sql_standin, xapi


class TestSqlStandIn:
    def test_should_take_its_columns_from_the_bundle_dataset(self):
        columns = dict(sql_standin.dataset_columns())
        assert columns["timestamp"] == "DATETIME"
        assert columns["verb.id"] == "VARCHAR"
        assert not any("contextActivities" in name for name in columns)

    def test_should_store_one_row_per_statement_with_dotted_columns(self, tmp_path):
        statements = xapi.generate(50, seed=7)
        path = tmp_path / "s.db"
        assert sql_standin.write(path, "statements-x", statements) == 50
        with sqlite3.connect(path) as db:
            verbs = dict(db.execute(
                'SELECT "verb.id", COUNT(*) FROM "statements-x" GROUP BY "verb.id"').fetchall())
        expected: dict[str, int] = {}
        for statement in statements:
            expected[statement["verb"]["id"]] = expected.get(statement["verb"]["id"], 0) + 1
        assert verbs == expected

    def test_should_write_times_in_utc_for_sqlites_date_functions(self, tmp_path):
        doc = {"timestamp": "2026-03-01T23:30:00+02:00", "verb": {"id": "v"}}
        sql_standin.write(tmp_path / "s.db", "t", [doc])
        with sqlite3.connect(tmp_path / "s.db") as db:
            (day,) = db.execute("SELECT DATE(timestamp) FROM t").fetchone()
        assert day == "2026-03-01"  # 21:30 UTC

    def test_should_leave_missing_fields_null(self):
        assert sql_standin.field({"result": {}}, "result.score.scaled") is None
        assert sql_standin.field({"result": "x"}, "result.score") is None

    def test_should_refuse_a_multi_valued_field(self, tmp_path):
        with pytest.raises(ValueError, match="not single-valued"):
            sql_standin.sql_value(["a", "b"], "VARCHAR")

    def test_should_page_through_an_index(self):
        pages = [[{"_source": {"id": str(i)}, "sort": [str(i)]} for i in range(start, stop)]
                 for start, stop in ((0, 1000), (1000, 1500))]  # fmt: skip
        asked: list[dict] = []

        def request(method: str, path: str, body: dict) -> tuple[int, dict]:
            asked.append(body)
            return 200, {"hits": {"hits": pages[len(asked) - 1]}}

        documents = sql_standin.stored_documents(request, "statements")
        assert [d["id"] for d in documents] == [str(i) for i in range(1500)]
        assert asked[1]["search_after"] == ["999"]
