"""Real services for the hooks tier: Elasticsearch and an older one with ingest and Painless
(Maven Central), Ralph and Superset (PyPI),
PostgreSQL 15 and Valkey/Redis (Debian packages, from .ci/install-system-packages).

`python -m lastack services` installs the first three (quick when present) and prints every
version; `make test` runs it before pytest. The tests start and stop the servers themselves.
A missing Debian package is reported, not fatal: the tests that need it skip and say how to
get it.
"""

from __future__ import annotations

import sys

from lastack.testing.services import elasticsearch, ingest_node, postgresql, ralph, superset, valkey
from lastack.testing.services.es_distribution import find_java
from lastack.testing.services.processes import ServiceError, venv_package_versions


def main(args: list[str]) -> int:
    if args and args[0] in {"-h", "--help"}:
        print(__doc__.strip())
        return 0
    try:
        elasticsearch.install()
        ingest_node.install()
        java_home, java = find_java()
        ralph.install()
        versions = venv_package_versions(ralph.PYTHON, "ralph-malph", "elasticsearch", "pydantic")
        superset.install()
        drivers = venv_package_versions(superset.PYTHON, "psycopg2-binary", "redis")
    except ServiceError as error:
        print(f"lastack services: {error}", file=sys.stderr)
        return 1
    print(f"elasticsearch {elasticsearch.VERSION} (integ-test-zip) on Java {java} ({java_home})")
    print(f"elasticsearch {ingest_node.VERSION} with ingest-common and lang-painless (the "
          "ingest pipeline's stand-in)")
    print(
        f"ralph-malph {versions['ralph-malph']} with elasticsearch-py "
        f"{versions['elasticsearch']}, pydantic {versions['pydantic']}"
    )
    print(f"apache-superset {superset.VERSION} (its own venv, for the Superset wiring hook) with "
          f"psycopg2 {drivers['psycopg2-binary']}, redis-py {drivers['redis']}")
    for name, probe in (("postgresql", postgresql.server_version),
                        ("valkey/redis", valkey.server_version)):  # fmt: skip
        try:
            print(f"{name} {probe()}")
        except ServiceError as error:
            print(f"lastack services: {error} (the tests that need it skip)", file=sys.stderr)
    return 0
