"""A real Elasticsearch 8.19 on loopback for the hooks tier, from Maven Central.

Elasticsearch's own download site is out of reach; Maven Central carries the
`integ-test-zip` distribution (org.elasticsearch.distribution.integ-test-zip:elasticsearch),
which Maven fetches here. Compared with the default distribution that ECK runs it:
- has no bundled JDK: it runs on a JDK found on this machine (17 or newer);
- has only four modules (x-pack-core, x-pack-security, transport-netty4, apm), so there is
  no SQL (`x-pack-sql`, what Superset uses), no `analysis-common` (so the native realm's
  `.security` index cannot be created: only file-realm users work, which is what ECK's
  `auth.fileRealm` gives us anyway), no ingest, ILM, data streams or painless;
- lacks `rest-root`, the module answering `GET /`, which elasticsearch-py's `info()` and
  Ralph's heartbeat call. A 60-line stand-in (rest_root/RootInfoPlugin.java) is compiled
  against the distribution's own jars at install time and installed as a module.
Security works: file-realm users and roles (the chart's roles.yml), HTTP TLS with a CA of
our own (as ECK's self-signed one), 401 on a wrong password, 403 on a missing privilege.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt

from lastack.chart import chart_values
from lastack.net import free_port
from lastack.paths import CHART_DIR, TOOLS_DIR
from lastack.testing.services.es_distribution import (
    NodeDirs,
    find_java,
    install_distribution,
    stamped,
    unprivileged,
)
from lastack.testing.services.processes import LoopbackServer, ManagedProcess, ServiceError

# The Elasticsearch the chart runs; Maven Central publishes its integ-test-zip per release.
VERSION = chart_values.default("eck-elasticsearch.version")
ARTIFACT = f"org.elasticsearch.distribution.integ-test-zip:elasticsearch:{VERSION}:zip"
INSTALL_DIR = TOOLS_DIR / "elasticsearch"
ES_HOME = INSTALL_DIR / f"elasticsearch-{VERSION}"
REST_ROOT_SOURCE = Path(__file__).parent / "rest_root" / "RootInfoPlugin.java"
REST_ROOT_MODULE = "la-stack-rest-root"
ROLES_FILE = CHART_DIR / "files" / "elasticsearch" / "roles.yml"
HEAP = "512m"
START_TIMEOUT = 150.0
ADMIN_USER = "la-stack-test-admin"


def install_stamp() -> str:
    source = hashlib.sha256(REST_ROOT_SOURCE.read_bytes()).hexdigest()[:16]
    return f"{VERSION} rest-root {source}\n"


def installed() -> bool:
    return stamped(ES_HOME, install_stamp())


def install(log: Any = print) -> Path:
    """Fetch and unpack the distribution and add the rest-root stand-in (quick when done)."""
    return install_distribution(ARTIFACT, ES_HOME, install_stamp(),
                                lambda: build_rest_root(find_java()[0]), log)


def build_rest_root(java_home: Path) -> None:
    module_dir = ES_HOME / "modules" / REST_ROOT_MODULE
    module_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as classes:
        result = subprocess.run(
            [str(java_home / "bin" / "javac"), "--release", "17", "-nowarn", "-d", classes,
             "-cp", str(ES_HOME / "lib" / "*"), str(REST_ROOT_SOURCE)],
            capture_output=True, text=True,
        )  # fmt: skip
        if result.returncode != 0:
            raise ServiceError(f"compiling the rest-root stand-in failed:\n{result.stderr}")
        with zipfile.ZipFile(module_dir / f"{REST_ROOT_MODULE}.jar", "w") as jar:
            for path in sorted(Path(classes).rglob("*.class")):
                jar.write(path, path.relative_to(classes).as_posix())
    (module_dir / "plugin-descriptor.properties").write_text(
        "description=GET / for the integ-test-zip distribution (la-stack hooks tier)\n"
        f"version={VERSION}\nname={REST_ROOT_MODULE}\n"
        "classname=lastack.restroot.RootInfoPlugin\n"
        f"java.version=17\nelasticsearch.version={VERSION}\n"
    )


def make_certificates(directory: Path) -> None:
    """A throwaway CA and an HTTP certificate for 127.0.0.1/localhost (like ECK's own)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ServiceError("openssl is not installed: apt-get install openssl")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    steps = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
         "-days", "2", "-subj", "/CN=la-stack-test-ca"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "http.key", "-out", "http.csr",
         "-subj", "/CN=localhost"],
        ["x509", "-req", "-in", "http.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "http.crt", "-days", "2", "-extfile", "san.ext"],
    ]  # fmt: skip
    for step in steps:
        result = subprocess.run([openssl, *step], cwd=directory, capture_output=True, text=True)
        if result.returncode != 0:
            raise ServiceError(f"openssl {step[0]} failed: {result.stderr.strip()}")


def es_password_hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(10)).decode()


@dataclass
class EsUser:
    password: str
    roles: list[str]


@dataclass
class ElasticsearchServer(LoopbackServer):
    """One single-node cluster with HTTPS and file-realm users. Use as a context manager."""

    users: dict[str, EsUser] = field(default_factory=dict)
    heap: str = HEAP
    http_port: int = 0  # 0: a free port chosen at start
    url: str = ""
    ca_file: Path = Path()
    admin_password: str = field(default_factory=lambda: base64.b32encode(os.urandom(10)).decode())
    java_version: int = 0
    startup_seconds: float = 0.0
    snapshot_dir: Path = Path()
    _process: ManagedProcess | None = None
    _workdir: Path | None = None

    def start(self) -> None:
        node = NodeDirs.prepare(install(), VERSION, "la-stack-es-")
        self._workdir, self.java_version = node.work, node.java_version
        self.snapshot_dir = node.work / "snapshots"
        self.snapshot_dir.mkdir()
        make_certificates(node.conf / "certs")
        self.ca_file = node.conf / "certs" / "ca.crt"
        http_port, transport_port = self.http_port or free_port(), free_port()
        settings = {
            "cluster.name": "la-stack-hooks",
            "node.name": "node-1",
            "network.host": "127.0.0.1",
            "http.port": http_port,
            "transport.port": transport_port,
            "discovery.type": "single-node",
            "path.data": str(node.data),
            "path.logs": str(node.logs),
            # `fs` snapshot repositories may live below this folder.
            "path.repo": str(self.snapshot_dir),
            # A nearly full developer disk must not turn indices read-only mid-test.
            "cluster.routing.allocation.disk.threshold_enabled": False,
            "xpack.security.enabled": True,
            "xpack.security.http.ssl.enabled": True,
            "xpack.security.http.ssl.key": "certs/http.key",
            "xpack.security.http.ssl.certificate": "certs/http.crt",
            "xpack.security.http.ssl.certificate_authorities": "certs/ca.crt",
        }
        node.write_settings(settings)
        shutil.copyfile(ROLES_FILE, node.conf / "roles.yml")
        self.write_users(node.conf)
        argv = unprivileged(node.work, [str(node.home / "bin" / "elasticsearch")])
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(node.tmp),
            "ES_JAVA_HOME": str(node.java_home),
            "ES_PATH_CONF": str(node.conf),
            "ES_TMPDIR": str(node.tmp),
            "ES_JAVA_OPTS": f"-Xms{self.heap} -Xmx{self.heap}",
        }
        self.url = f"https://127.0.0.1:{http_port}"
        self._process = ManagedProcess("Elasticsearch", argv, env, node.work / "console.log",
                                       cwd=node.work)
        self.startup_seconds = self._process.wait_ready(
            self._healthy, START_TIMEOUT, "a yellow or green cluster"
        )

    def write_users(self, conf: Path) -> None:
        users = {ADMIN_USER: EsUser(self.admin_password, ["superuser"]), **self.users}
        (conf / "users").write_text(
            "".join(f"{name}:{es_password_hash(u.password)}\n" for name, u in users.items())
        )
        by_role: dict[str, list[str]] = {}
        for name, user in users.items():
            for role in user.roles:
                by_role.setdefault(role, []).append(name)
        (conf / "users_roles").write_text(
            "".join(f"{role}:{','.join(names)}\n" for role, names in by_role.items())
        )

    def _healthy(self) -> bool:
        status, body = self.request("GET", "/_cluster/health")
        return status == 200 and body.get("status") in ("green", "yellow")

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        user: str = ADMIN_USER,
        password: str | None = None,
        timeout: float = 30.0,
    ) -> tuple[int, Any]:
        """A JSON request as `user` (the superuser by default); returns (status, body)."""
        data = None if body is None else json.dumps(body)
        return self.request_raw(method, path, data, "application/json", user, password, timeout)

    def request_raw(
        self,
        method: str,
        path: str,
        data: str | bytes | None,
        content_type: str,
        user: str = ADMIN_USER,
        password: str | None = None,
        timeout: float = 120.0,
    ) -> tuple[int, Any]:
        """A request with a ready-made body (e.g. _bulk's NDJSON); the answer parsed as JSON."""
        password = self.admin_password if password is None else password
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request = urllib.request.Request(
            self.url + path,
            data=data.encode() if isinstance(data, str) else data,
            method=method,
            headers={"Authorization": f"Basic {token}", "Content-Type": content_type},
        )
        context = ssl.create_default_context(cafile=str(self.ca_file))
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as answer:
                raw, status = answer.read(), answer.status
        except urllib.error.HTTPError as answer:
            raw, status = answer.read(), answer.code
        return status, (json.loads(raw) if raw.strip() else None)


