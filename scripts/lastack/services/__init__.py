"""Real services for the hooks tier: Elasticsearch (Maven Central), Ralph and Superset (PyPI).

`python -m lastack services` installs all three (quick when present) and prints their versions;
`make test` runs it before pytest. The tests start and stop the servers themselves.
"""

from __future__ import annotations

import sys

from lastack.services import elasticsearch, ralph, superset
from lastack.services.processes import ServiceError


def main(args: list[str]) -> int:
    if args and args[0] in {"-h", "--help"}:
        print(__doc__.strip())
        return 0
    try:
        elasticsearch.install()
        java_home, java = elasticsearch.find_java()
        ralph.install()
        versions = ralph.package_versions("ralph-malph", "elasticsearch", "pydantic")
        superset.install()
    except ServiceError as error:
        print(f"lastack services: {error}", file=sys.stderr)
        return 1
    print(f"elasticsearch {elasticsearch.VERSION} (integ-test-zip) on Java {java} ({java_home})")
    print(
        f"ralph-malph {versions['ralph-malph']} with elasticsearch-py "
        f"{versions['elasticsearch']}, pydantic {versions['pydantic']}"
    )
    print(f"apache-superset {superset.VERSION} (its own venv, for the Superset wiring hook)")
    return 0
