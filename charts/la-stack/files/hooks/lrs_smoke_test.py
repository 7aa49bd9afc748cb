"""`helm test`: one xAPI statement through the whole data path.

Posts a statement to Ralph with the helm-test LRS account, reads it back by id with the
same account, then counts it in Elasticsearch with the read-only Superset user over
verified TLS. Each failure names the hop that broke in one sentence.

Environment: LRS_URL (…/xAPI), LRS_USERNAME, LRS_PASSWORD, ES_URL, ES_USERNAME,
ES_PASSWORD, ES_CA_FILE, ES_INDEX, DEADLINE_SECONDS.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from hooklib import Deadline, JsonClient, TransientError, env, fail, log, retry, run


def statement(statement_id: str) -> dict[str, Any]:
    return {
        "id": statement_id,
        "actor": {
            "objectType": "Agent",
            "account": {"homePage": "https://la-stack.invalid", "name": "helm-test"},
        },
        "verb": {"id": "http://id.tincanapi.com/verb/tested", "display": {"en": "tested"}},
        "object": {
            "objectType": "Activity",
            "id": "https://la-stack.invalid/helm-test",
            "definition": {"type": "http://adlnet.gov/expapi/activities/assessment"},
        },
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }


def post_and_read_back(lrs: JsonClient, statement_id: str, deadline: Deadline) -> None:
    def post() -> None:
        answer = lrs.request("POST", "/statements", [statement(statement_id)])
        if answer.status == 401:
            fail("Ralph rejected the helm-test LRS account (401): its auth.json and Secret "
                 "disagree.")
        if answer.status not in {200, 204}:
            raise TransientError(
                f"POST /statements answered {answer.status}: {answer.error_reason()}"
            )

    retry(post, "posting a statement to Ralph", deadline)
    log(f"posted statement {statement_id} to Ralph")

    def read() -> None:
        answer = lrs.request("GET", f"/statements?statementId={statement_id}")
        if answer.status != 200 or not isinstance(answer.body, dict):
            raise TransientError(f"GET /statements answered {answer.status}")
        # xAPI answers a statementId with the statement; Ralph wraps it in a result list.
        found = answer.body.get("statements", [answer.body])
        if not any(s.get("id") == statement_id for s in found):
            raise TransientError("the statement is not readable yet")

    retry(read, "reading the statement back from Ralph", deadline)
    log("read the statement back from Ralph")


def count_in_elasticsearch(
    es: JsonClient, index: str, statement_id: str, deadline: Deadline
) -> None:
    query = {"query": {"term": {"id": statement_id}}}

    def count() -> None:
        answer = es.request("POST", f"/{index}/_count", query)
        if answer.status == 401:
            fail("Elasticsearch rejected the reader user (401).")
        if answer.status != 200:
            raise TransientError(f"_count answered {answer.status}: {answer.error_reason()}")
        if answer.body.get("count") != 1:
            # Ralph does not refresh after writes: the document appears within a second.
            raise TransientError(f"the statement is counted {answer.body.get('count')} times")

    retry(count, f"counting the statement in the {index} index", deadline)
    log(f"Elasticsearch counts the statement once in {index}")


def main() -> None:
    deadline = Deadline.from_env()
    lrs = JsonClient(
        env("LRS_URL"),
        deadline,
        headers={
            **JsonClient.basic_auth(env("LRS_USERNAME"), env("LRS_PASSWORD")),
            "X-Experience-API-Version": "1.0.3",
        },
    )
    es = JsonClient(
        env("ES_URL"),
        deadline,
        ca_file=env("ES_CA_FILE"),
        headers=JsonClient.basic_auth(env("ES_USERNAME"), env("ES_PASSWORD")),
    )
    statement_id = str(uuid.uuid4())
    post_and_read_back(lrs, statement_id, deadline)
    count_in_elasticsearch(es, env("ES_INDEX", "statements"), statement_id, deadline)
    log("the data path works: LRS account -> Ralph -> Elasticsearch")


if __name__ == "__main__":
    run(main)
