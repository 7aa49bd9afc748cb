"""`lastack bench-pipeline`: what the statements' ingest pipeline costs at write time.

The pipeline's Painless script runs here on Elasticsearch 7.10.2 (testing.services.ingest_node,
the only Elasticsearch with ingest and Painless that Maven Central has), so the figure is that
version's, on this machine. The same statements (logstore_xapi v5.1.0's, with fresh ids) are
bulk-indexed into two indices of one mapping, one with the chart's pipeline as
`default_pipeline` and one without, after a warm-up; both rates are printed side by side.
Nothing asserts them.

    python -m lastack bench-pipeline [--size 20000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request

from lastack.bench.bench_ingest import statements
from lastack.testing.services.ingest_node import VERSION, IngestNode, chart_pipeline
from lastack.testing.services.processes import ServiceError

PIPELINE = "statements-dimensions"
MAPPINGS = {"_source": {"excludes": ["la_stack", "la_stack.*"]}, "dynamic": True}


def bulk(node: IngestNode, index: str, docs: list[str], batch: int) -> float:
    """Seconds to index `docs` into `index` in batches and make them searchable. No refresh
    per batch: waiting for one would hide the script's cost behind the refresh interval."""
    start = time.monotonic()
    for first in range(0, len(docs), batch):
        lines = "".join(f'{{"create":{{"_id":"{json.loads(doc)["id"]}"}}}}\n{doc}\n'
                        for doc in docs[first:first + batch])
        request = urllib.request.Request(
            f"{node.url}/{index}/_bulk", data=lines.encode(),
            headers={"Content-Type": "application/x-ndjson"})
        with urllib.request.urlopen(request, timeout=300) as answer:
            if json.loads(answer.read())["errors"]:
                raise ServiceError(f"bulk into {index} reported errors")
    node.request("POST", f"/{index}/_refresh")
    return time.monotonic() - start


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lastack bench-pipeline",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=2026)
    options = parser.parse_args(args)
    docs = statements("fixture", options.size, options.seed)
    rates = {}
    try:
        with IngestNode() as node:
            status, body = node.request("PUT", f"/_ingest/pipeline/{PIPELINE}", chart_pipeline())
            if status != 200:
                raise ServiceError(f"installing the pipeline failed: {body}")
            for index, pipeline in (("warm-up", PIPELINE), ("plain", ""), ("derived", PIPELINE)):
                settings = {"number_of_replicas": 0, **({"default_pipeline": pipeline}
                                                       if pipeline else {})}
                node.request("PUT", f"/{index}", {"settings": {"index": settings},
                                                  "mappings": MAPPINGS})
                rates[index] = len(docs) / bulk(node, index, docs, options.batch)
    except (ServiceError, OSError) as error:
        print(f"bench-pipeline: {error}", file=sys.stderr)
        return 1
    print(f"Ingest pipeline cost, Elasticsearch {VERSION} (ingest stand-in), {os.cpu_count()} "
          f"CPUs: {options.size:,} logstore_xapi statements, _bulk batches of {options.batch}")
    print(f"  without the pipeline  {rates['plain']:>8.0f} statements/s")
    print(f"  with the pipeline     {rates['derived']:>8.0f} statements/s  "
          f"{rates['derived'] / rates['plain']:.2f} of the rate without")
    return 0
