"""`lastack bench-ingest`: Ralph's ingest rate against the storage engine's own, in one run.

Starts the hooks tier's real services (Elasticsearch from Maven Central, Ralph from PyPI),
wires them the chart's way (es_bootstrap creates each alias from the chart's template;
Ralph gets the environment the chart renders, the URL-encoded writer credentials and a
bcrypt auth.json built by the secrets hook's functions). For each size (22,000 and 220,000
statements: the tutorial's sample and ten times it) and each data set (generated, and the
logstore_xapi v5.1.0 fixture repeated with fresh ids) the same statements go
(a) through Ralph: POSTed in batches of 1,000 from parallel threads, as Aspects sends them;
(b) as direct `_bulk` (op_type create, refresh=wait_for: the same conflict-safe write) into
an alias of the same template, as the writer user, from the same threads and batches;
and the table gives both rates, their ratio, and the bytes stored per statement (primary,
after a force-merge) for the default codec and for best_compression. A few Ralph variants at
the small size show what each tuning knob is worth. Numbers depend on the machine (and on
what else runs on it): nothing asserts them.

    python -m lastack bench-ingest [--sizes 22000,220000] [--batch 1000] [--workers 10]
    LA_STACK_BENCH_QUICK=1: only the smaller size.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lastack.net import free_port
from lastack.paths import shared_dir
from lastack.testing import xapi
from lastack.testing.services import elasticsearch, ralph
from lastack.testing.services.hookfiles import (
    bootstrap_config,
    bootstrap_env,
    import_hook,
    run_hook,
)
from lastack.testing.services.processes import ServiceError

LRS_AGENT = {"mbox": "mailto:moodle@la-stack.example.org"}


def random_text(length: int = 24) -> str:
    return os.urandom(length).hex()[:length]


def wire(es: elasticsearch.ElasticsearchServer, workdir: Path, lrs: tuple[str, str],
         alias: str, values: dict[str, Any]) -> dict:
    """Run es_bootstrap for `alias` with the config the chart renders from `values`, and
    build Ralph's env the way the secrets hook would."""
    credentials, secrets_config = import_hook("credentials"), import_hook("secrets_config")
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "es-bootstrap.json"
    config_file.write_text(json.dumps({**bootstrap_config(values), "alias": alias}))
    bootstrap = run_hook("es_bootstrap", bootstrap_env(
        es.url, "la-stack-bootstrap", es.users["la-stack-bootstrap"].password, es.ca_file,
        config_file, deadline=120))
    if bootstrap.returncode != 0:
        raise ServiceError(f"es_bootstrap failed: {bootstrap.stderr.strip()}")
    writer = credentials.Credentials("la-stack-ralph", es.users["la-stack-ralph"].password)
    account = secrets_config.LrsAccount(
        "bench-lrs", lrs[0], ("statements/write", "statements/read/mine"), LRS_AGENT
    )
    auth_file = workdir / "auth.json"
    auth_file.write_text(credentials.auth_json([(account, credentials.Credentials(*lrs))]))
    app_dir = workdir / "ralph-app"
    app_dir.mkdir(exist_ok=True)
    return ralph.chart_env(
        hosts=credentials.hosts_with_credentials(es.url, writer),
        auth_file=auth_file,
        ca_file=es.ca_file,
        app_dir=app_dir,
        index=alias,
    )


FIXTURE = shared_dir() / "fixtures" / "logstore_xapi-v5.1.0" / "statements.json"
SIZES = (22_000, 220_000)
STORED = "2026-01-01T00:00:00+00:00"

# Ralph variants at the smaller size on generated statements: (label, env overrides,
# uvicorn workers). Each is one knob away from the chart's settings.
VARIANTS = (
    ("Ralph, WRITE_CHUNK_SIZE=500 (Ralph's default)",
     {"RALPH_BACKENDS__LRS__ES__WRITE_CHUNK_SIZE": "500"}),
    ("Ralph, 2 uvicorn workers", {"WEB_CONCURRENCY": "2"}),
    ("Ralph, RUNSERVER_BACKEND=es (blocking client)", {"RALPH_RUNSERVER_BACKEND": "es"}),
    ("Ralph, refresh off (not conflict-safe)",
     {"RALPH_BACKENDS__LRS__ES__REFRESH_AFTER_WRITE": "false"}),
)


def statements(dataset: str, count: int, seed: int) -> list[str]:
    """`count` statements as compact JSON, each with a fresh id (so none is a duplicate)."""
    if dataset == "generated":
        return [json.dumps(s, separators=(",", ":")) for s in xapi.generate(count, seed=seed)]
    fixture = [entry["statement"] for entry in json.loads(FIXTURE.read_text())]
    ids = uuid.UUID(int=seed)
    out = []
    for i in range(count):
        ident = str(uuid.uuid5(ids, str(i)))
        out.append(json.dumps({**fixture[i % len(fixture)], "id": ident}, separators=(",", ":")))
    return out


def ralph_body(batch: list[str]) -> bytes:
    return ("[" + ",".join(batch) + "]").encode()


def bulk_body(batch: list[str]) -> bytes:
    """NDJSON of create actions; each document gets `stored` and `authority` as Ralph adds
    them, so both paths store the same bytes."""
    extra = f',"stored":"{STORED}","authority":{json.dumps(LRS_AGENT)}}}'
    lines = []
    for doc in batch:
        ident = json.loads(doc)["id"]
        lines.append(f'{{"create":{{"_id":"{ident}"}}}}\n{doc[:-1]}{extra}\n')
    return "".join(lines).encode()


def timed(send: Any, bodies: list[bytes], workers: int) -> tuple[float, list[str]]:
    """`send` every ready-made body from `workers` threads; (seconds, error descriptions)."""
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        errors = [e for e in pool.map(send, bodies) if e]
    return time.perf_counter() - start, errors


class Bench:
    def __init__(self, es: elasticsearch.ElasticsearchServer, tmp: Path,
                 options: argparse.Namespace, lrs: tuple[str, str]) -> None:
        self.es, self.tmp, self.options, self.lrs = es, tmp, options, lrs
        self.runs = 0

    def alias(self, values: dict[str, Any]) -> tuple[str, dict[str, str]]:
        """A fresh alias of the chart's template (with `values`), and Ralph's env for it."""
        self.runs += 1
        alias = f"statements_bench_{self.runs:02d}"  # the roles cover statements*
        return alias, wire(self.es, self.tmp / alias, self.lrs, alias, values)

    def measure(self, alias: str, count: int, seconds: float, errors: list[str]) -> dict:
        """Rate, stored count and primary bytes after a force-merge; then frees the index."""
        es = self.es
        es.request("POST", f"/{alias}/_refresh", timeout=300)
        _, counted = es.request("GET", f"/{alias}/_count")
        es.request("POST", f"/{alias}/_forcemerge?max_num_segments=1", timeout=900)
        _, stats = es.request("GET", f"/{alias}/_stats/store")
        stored = stats["_all"]["primaries"]["store"]["size_in_bytes"]
        es.request("DELETE", f"/{alias}-*", timeout=120)
        return {"rate": count / seconds, "seconds": seconds, "stored": counted["count"],
                "bytes": stored / max(counted["count"], 1), "errors": errors,
                "ok": not errors and counted["count"] == count}  # fmt: skip

    def through_ralph(self, docs: list[str], overrides: dict[str, str] | None = None) -> dict:
        alias, env = self.alias({})
        bodies = [ralph_body(batch) for batch in self.batches(docs)]
        with ralph.RalphServer({**env, **(overrides or {})}) as server:
            def send(data: bytes) -> str | None:
                status, body = server.request("POST", "/xAPI/statements", data,
                                              auth=self.lrs, timeout=600)  # fmt: skip
                return None if status == 200 else f"{status} {str(body)[:200]}"

            seconds, errors = timed(send, bodies, self.options.workers)
        return self.measure(alias, len(docs), seconds, errors)

    def direct(self, docs: list[str], values: dict[str, Any] | None = None) -> dict:
        alias, _ = self.alias(values or {})
        writer = self.es.users["la-stack-ralph"].password
        bodies = [bulk_body(batch) for batch in self.batches(docs)]

        def send(data: bytes) -> str | None:
            status, body = self.es.request_raw(
                "POST", f"/{alias}/_bulk?refresh=wait_for", data,
                "application/x-ndjson", user="la-stack-ralph", password=writer, timeout=600,
            )  # fmt: skip
            if status != 200 or body.get("errors"):
                return f"{status} {str(body)[:200]}"
            return None

        seconds, errors = timed(send, bodies, self.options.workers)
        return self.measure(alias, len(docs), seconds, errors)

    def batches(self, docs: list[str]) -> list[list[str]]:
        size = self.options.batch
        return [docs[i : i + size] for i in range(0, len(docs), size)]


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="lastack bench-ingest", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=10, help="parallel POSTing threads")
    parser.add_argument("--seed", type=int, default=2026)
    options = parser.parse_args(args)
    sizes = [int(size) for size in options.sizes.split(",")]
    if os.environ.get("LA_STACK_BENCH_QUICK"):
        sizes = sizes[:1]
    users = {
        "la-stack-ralph": elasticsearch.EsUser(random_text(), ["la_stack_statements_writer"]),
        "la-stack-bootstrap": elasticsearch.EsUser(random_text(), ["la_stack_index_bootstrap"]),
    }
    lrs = ("moodle", random_text())
    chart = ralph.chart_env("http://unused", "auth.json", None, ".")
    rows, variants = [], []
    try:
        with (
            tempfile.TemporaryDirectory(prefix="la-stack-bench-") as tmp,
            elasticsearch.ElasticsearchServer(users=users, http_port=free_port()) as es,
        ):
                print(f"Elasticsearch {elasticsearch.VERSION} up in {es.startup_seconds:.1f}s "
                      f"(Java {es.java_version}, heap {es.heap}); Ralph {ralph.VERSION}; "
                      f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} at start")  # fmt: skip
                bench = Bench(es, Path(tmp), options, lrs)
                # Warm-up, not reported: the JVM's first minutes would favour later rows.
                warm = statements("generated", 10 * options.batch, options.seed + 1)
                bench.direct(warm)
                bench.through_ralph(warm)
                for size in sizes:
                    for dataset in ("generated", "fixture"):
                        docs = statements(dataset, size, options.seed)
                        ralph_row = bench.through_ralph(docs)
                        direct_row = bench.direct(docs)
                        compressed = bench.direct(
                            docs, {"elasticsearch": {"statements": {"bestCompression": True}}}
                        )
                        rows.append((size, dataset, ralph_row, direct_row, compressed))
                        if size == sizes[0] and dataset == "generated":
                            for label, overrides in VARIANTS:
                                variants.append((label, bench.through_ralph(docs, overrides)))
                load = os.getloadavg()[0]
    except ServiceError as error:
        print(f"bench-ingest: {error}", file=sys.stderr)
        return 1
    return report(chart, rows, variants, options, load)


def report(chart: dict[str, str], rows: list, variants: list, options: argparse.Namespace,
           load: float) -> int:
    shown = ("RALPH_RUNSERVER_BACKEND", "RALPH_BACKENDS__LRS__ES__REFRESH_AFTER_WRITE",
             "RALPH_BACKENDS__LRS__ES__WRITE_CHUNK_SIZE", "WEB_CONCURRENCY")
    settings = ", ".join(f"{key.removeprefix('RALPH_BACKENDS__LRS__ES__')}={chart[key]}"
                         for key in shown)
    print(f"Batches of {options.batch} from {options.workers} threads; Ralph with the chart's "
          f"settings ({settings}); direct _bulk as the writer, op_type create, "
          f"refresh=wait_for. Load average {load:.2f} at the end.")
    print(f"{'statements':>10} {'data set':<9} {'Ralph/s':>8} {'_bulk/s':>8} {'ratio':>5} "
          f"{'B/stmt':>6} {'B/stmt best_compr.':>18} {'Ralph s':>7} {'_bulk s':>7}  stored")
    failed = False
    by_dataset: dict[str, list[float]] = {}
    for size, dataset, via, direct, packed in rows:
        by_dataset.setdefault(dataset, []).append(via["rate"])
        ok = via["ok"] and direct["ok"] and packed["ok"]
        failed |= not ok
        print(f"{size:>10,} {dataset:<9} {via['rate']:>8.0f} {direct['rate']:>8.0f} "
              f"{via['rate'] / direct['rate']:>5.2f} {direct['bytes']:>6.0f} "
              f"{packed['bytes']:>18.0f} {via['seconds']:>7.1f} {direct['seconds']:>7.1f}  "
              f"{'all' if ok else 'MISSING'}")
        for error in (via["errors"] + direct["errors"] + packed["errors"])[:5]:
            print(f"    {error}")
    for dataset, rates in by_dataset.items():
        if len(rates) > 1:
            print(f"  {dataset}: Ralph's rate at the largest size is {rates[-1] / rates[0]:.2f}"
                  " of its rate at the smallest")
    if variants:
        base = rows[0][2]["rate"]
        print(f"Ralph variants, {rows[0][0]:,} generated statements (chart's settings: "
              f"{base:.0f}/s):")
        for label, row in variants:
            failed |= not row["ok"]
            print(f"  {label:<48} {row['rate']:>6.0f}/s  {row['rate'] / base:.2f} of the chart's"
                  f"{'' if row['ok'] else '  MISSING statements'}")
    return 1 if failed else 0
