"""`lastack bench-ingest`: how fast Ralph takes Moodle-like statements into Elasticsearch.

Starts the hooks tier's real services (Elasticsearch from Maven Central, Ralph from PyPI),
wires them the chart's way (es_bootstrap creates the index; Ralph gets the URL-encoded
writer credentials and a bcrypt auth.json built by the secrets hook's functions), then POSTs
generated statements in batches from parallel threads and reports statements per second and
the count Elasticsearch holds. The defaults mirror the tutorial's 22k sample, sent the way
Aspects recommends (batches of 1,000). Numbers depend on the machine: nothing asserts them.

    python -m lastack bench-ingest [--count 22000] [--batch 1000] [--workers 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lastack import xapi
from lastack.services import elasticsearch, ralph
from lastack.services.hookfiles import TEMPLATE_FILE, import_hook, run_hook
from lastack.services.processes import ServiceError, free_port

LRS_AGENT = {"mbox": "mailto:moodle@la-stack.example.org"}


def random_text(length: int = 24) -> str:
    return os.urandom(length).hex()[:length]


def wire(es: elasticsearch.ElasticsearchServer, workdir: Path, lrs: tuple[str, str]) -> dict:
    """Run es_bootstrap and build Ralph's env the way the secrets hook would."""
    credentials = import_hook("credentials")
    bootstrap = run_hook(
        "es_bootstrap",
        {
            "ES_URL": es.url,
            "ES_USERNAME": "la-stack-bootstrap",
            "ES_PASSWORD": es.users["la-stack-bootstrap"].password,
            "ES_CA_FILE": str(es.ca_file),
            "TEMPLATE_FILE": str(TEMPLATE_FILE),
            "DEADLINE_SECONDS": "120",
        },
    )
    if bootstrap.returncode != 0:
        raise ServiceError(f"es_bootstrap failed: {bootstrap.stderr.strip()}")
    writer = credentials.Credentials("la-stack-ralph", es.users["la-stack-ralph"].password)
    account = credentials.LrsAccount(
        "bench-lrs", lrs[0], ("statements/write", "statements/read/mine"), LRS_AGENT
    )
    auth_file = workdir / "auth.json"
    auth_file.write_text(credentials.auth_json([(account, credentials.Credentials(*lrs))]))
    app_dir = workdir / "ralph-app"
    app_dir.mkdir()
    return ralph.chart_env(
        hosts=credentials.hosts_with_credentials(es.url, writer),
        auth_file=auth_file,
        ca_file=es.ca_file,
        app_dir=app_dir,
    )


def post_all(
    server: ralph.RalphServer, batches: list[list[dict]], workers: int, auth: tuple[str, str]
) -> tuple[float, list[str]]:
    """POST every batch from `workers` threads; returns (seconds, error descriptions)."""

    def post(batch: list[dict[str, Any]]) -> str | None:
        status, body = server.request("POST", "/xAPI/statements", batch, auth=auth, timeout=300)
        return None if status == 200 else f"{status} {str(body)[:200]}"

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        errors = [e for e in pool.map(post, batches) if e]
    return time.perf_counter() - start, errors


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="lastack bench-ingest", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--count", type=int, default=22_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=10, help="parallel POSTing threads")
    parser.add_argument("--ralph-workers", type=int, default=1, help="uvicorn processes")
    parser.add_argument("--seed", type=int, default=2026)
    options = parser.parse_args(args)

    statements = xapi.generate(options.count, seed=options.seed)
    batches = [statements[i : i + options.batch] for i in range(0, len(statements), options.batch)]
    users = {
        "la-stack-ralph": elasticsearch.EsUser(random_text(), ["la_stack_statements_writer"]),
        "la-stack-bootstrap": elasticsearch.EsUser(random_text(), ["la_stack_index_bootstrap"]),
    }
    lrs = ("moodle", random_text())
    try:
        with tempfile.TemporaryDirectory(prefix="la-stack-bench-") as tmp:
            es = elasticsearch.ElasticsearchServer(users=users, http_port=free_port())
            with es:
                print(f"Elasticsearch {elasticsearch.VERSION} up in {es.startup_seconds:.1f}s "
                      f"(Java {es.java_version}, heap {es.heap})")  # fmt: skip
                env = wire(es, Path(tmp), lrs)
                with ralph.RalphServer(env, workers=options.ralph_workers) as server:
                    print(f"Ralph {ralph.VERSION} up in {server.startup_seconds:.1f}s "
                          f"({options.ralph_workers} uvicorn worker(s))")  # fmt: skip
                    print(f"posting {len(statements)} statements in {len(batches)} batches of "
                          f"<= {options.batch} from {options.workers} threads")  # fmt: skip
                    seconds, errors = post_all(server, batches, options.workers, lrs)
                es.request("POST", "/statements/_refresh")
                _, counted = es.request("GET", "/statements/_count")
    except ServiceError as error:
        print(f"bench-ingest: {error}", file=sys.stderr)
        return 1
    print(f"total: {seconds:.2f}s, {len(statements) / seconds:.0f} statements/s")
    print(f"in Elasticsearch: {counted['count']} statements; failed batches: {len(errors)}")
    for error in errors[:5]:
        print(f"  {error}")
    return 0 if not errors and counted["count"] == len(statements) else 1
