"""A stand-in for the ingest side of the Elasticsearch ECK runs: Elasticsearch 7.10.2 with the
real ingest-common and lang-painless modules, on loopback, for the chart's ingest pipeline.

The hooks tier's Elasticsearch (the 8.19 integ-test-zip, see elasticsearch.py) has no ingest
processors and no Painless, and Maven Central has neither module for 8.x. What it does have:
the 7.10.2 integ-test-zip and CodeLibs' republished builds of Elasticsearch's own 7.10.2
modules (org.codelibs.elasticsearch.module), the newest there are. Put together they make a
node that runs the pipeline's Painless script as Elasticsearch runs it, four major versions
back: the language, the ingest `ctx` and `on_failure` are the same in 8.x and 9.x; what only
the ECK-run version shows (its Painless whitelist today) is not covered. The distribution is
the OSS one: no security, no x-pack types (no `flattened`), so it serves plain http.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lastack.net import free_port
from lastack.paths import TOOLS_DIR
from lastack.testing.services import maven
from lastack.testing.services.es_distribution import (
    NodeDirs,
    install_distribution,
    stamped,
    unprivileged,
)
from lastack.testing.services.hookfiles import SCRIPT_FILE, import_hook
from lastack.testing.services.processes import LoopbackServer, ManagedProcess

VERSION = "7.10.2"  # the newest version of CodeLibs' module builds on Maven Central
ARTIFACT = f"org.elasticsearch.distribution.integ-test-zip:elasticsearch:{VERSION}:zip"
MODULES = {  # module folder -> (its main class, the module it extends)
    "lang-painless": ("org.elasticsearch.painless.PainlessPlugin", ""),
    "ingest-common": ("org.elasticsearch.ingest.common.IngestCommonPlugin", "lang-painless"),
}
INSTALL_DIR = TOOLS_DIR / "elasticsearch-ingest"
ES_HOME = INSTALL_DIR / f"elasticsearch-{VERSION}"
HEAP = "256m"
SIMULATE_BATCH = 500
START_TIMEOUT = 150.0
# Painless generates classes at run time; these two are what its module's policy grants.
PAINLESS_POLICY = """grant {
  permission java.lang.RuntimePermission "createClassLoader";
  permission java.lang.RuntimePermission "getClassLoader";
};
"""


def install_stamp() -> str:
    return f"{VERSION} {' '.join(sorted(MODULES))}\n"


def installed() -> bool:
    return stamped(ES_HOME, install_stamp())


def install(log: Any = print) -> Path:
    """Fetch the distribution and the two modules with their jars (quick when done)."""
    return install_distribution(ARTIFACT, ES_HOME, install_stamp(), add_modules, log)


def add_modules() -> None:
    """lang-painless and ingest-common, CodeLibs' builds of the server's own modules."""
    for module, (classname, extends) in MODULES.items():
        folder = ES_HOME / "modules" / module
        maven.copy_with_dependencies(f"org.codelibs.elasticsearch.module:{module}:{VERSION}",
                                     folder)
        for jar in folder.glob("*.jar"):  # what the server has already (jar hell otherwise)
            if (ES_HOME / "lib" / jar.name).exists():
                jar.unlink()
        (folder / "plugin-descriptor.properties").write_text(
            f"description=Elasticsearch {module} ({VERSION}, CodeLibs' build)\n"
            f"version={VERSION}\nname={module}\nclassname={classname}\njava.version=1.8\n"
            f"elasticsearch.version={VERSION}\nextended.plugins={extends}\n"
            "has.native.controller=false\n")
        if module == "lang-painless":
            (folder / "plugin-security.policy").write_text(PAINLESS_POLICY)


@dataclass
class IngestNode(LoopbackServer):
    """A single node with ingest and Painless, plain http on loopback. Use as a context
    manager."""

    url: str = ""
    _process: ManagedProcess | None = None
    _workdir: Path | None = None

    def start(self) -> None:
        node = NodeDirs.prepare(install(), VERSION, "la-stack-es-ingest-")
        self._workdir = node.work
        http_port = free_port()
        settings = {
            "cluster.name": "la-stack-ingest", "node.name": "ingest-1",
            "network.host": "127.0.0.1", "http.port": http_port,
            "transport.port": free_port(), "discovery.type": "single-node",
            "path.data": str(node.data), "path.logs": str(node.logs),
            "cluster.routing.allocation.disk.threshold_enabled": False,
        }  # fmt: skip
        node.write_settings(settings)
        # The launcher runs from ES_HOME, which is read-only here: logs and dumps go to work.
        options = node.conf / "jvm.options"
        options.write_text(options.read_text().replace("logs/", f"{node.logs}/")
                           .replace("HeapDumpPath=data", f"HeapDumpPath={node.data}"))
        argv = unprivileged(node.work, [str(node.home / "bin" / "elasticsearch")])
        env = {"PATH": "/usr/bin:/bin", "HOME": str(node.tmp), "JAVA_HOME": str(node.java_home),
               "ES_PATH_CONF": str(node.conf), "ES_TMPDIR": str(node.tmp),
               "ES_JAVA_OPTS": f"-Xms{HEAP} -Xmx{HEAP}"}  # fmt: skip
        self.url = f"http://127.0.0.1:{http_port}"
        self._process = ManagedProcess("Elasticsearch (ingest)", argv, env,
                                       node.work / "console.log", cwd=node.work)
        self._process.wait_ready(self._healthy, START_TIMEOUT, "a yellow or green cluster")

    def _healthy(self) -> bool:
        status, body = self.request("GET", "/_cluster/health")
        return status == 200 and body.get("status") in ("green", "yellow")

    def request(self, method: str, path: str, body: Any = None,
                timeout: float = 60.0) -> tuple[int, Any]:
        """A JSON request; returns (status, parsed body)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                raw, status = answer.read(), answer.status
        except urllib.error.HTTPError as answer:
            raw, status = answer.read(), answer.code
        return status, (json.loads(raw) if raw.strip() else None)

    def simulate(self, pipeline: dict[str, Any],
                 documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each document as the pipeline leaves it (its `_source`), in order."""
        body = {key: pipeline[key] for key in ("description", "processors") if key in pipeline}
        out: list[dict[str, Any]] = []
        for start in range(0, len(documents), SIMULATE_BATCH):
            batch = documents[start:start + SIMULATE_BATCH]
            status, answer = self.request("POST", "/_ingest/pipeline/_simulate", {
                "pipeline": body, "docs": [{"_source": d} for d in batch]})
            if status != 200:
                raise RuntimeError(f"simulating the pipeline failed ({status}): "
                                   f"{str(answer)[:500]}")
            out += [doc["doc"]["_source"] for doc in answer["docs"]]
        return out

    def run_chart_pipeline(self, documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The documents as the chart's statements pipeline indexes them."""
        return self.simulate(chart_pipeline(), documents)


def chart_pipeline() -> dict[str, Any]:
    """The ingest pipeline the bootstrap hook installs, from the chart's files."""
    return import_hook("es_pipeline").pipeline_body(SCRIPT_FILE.read_text())
