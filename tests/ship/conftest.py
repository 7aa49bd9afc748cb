"""A real OCI registry on loopback (Debian's `docker-registry`), and an isolated Helm home."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from lastack.net import free_port

REGISTRY_PACKAGE = "docker-registry"
# The registry stops on its own after this long, even if the test process dies.
REGISTRY_LIFETIME_SECONDS = 900
MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


def _install_registry() -> str | None:
    """Install Debian's docker-registry when possible; None on success, else why not."""
    if shutil.which("apt-get") is None:
        return "apt-get is not available"
    if os.geteuid() != 0:
        return "not root, cannot run apt-get install"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", REGISTRY_PACKAGE]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    if proc.returncode != 0:
        # A fresh machine may not have package lists yet.
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=600,
                       check=False)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600,
                              check=False)
    if proc.returncode != 0:
        return f"apt-get install {REGISTRY_PACKAGE} failed: {proc.stderr.strip()[-300:]}"
    return None


@pytest.fixture(scope="session")
def registry_binary() -> str:
    found = shutil.which("docker-registry")
    if found:
        return found
    why = _install_registry()
    found = shutil.which("docker-registry")
    if found is None:
        pytest.skip(f"the OCI registry is not installed ({why}): install the Debian package "
                    f"`{REGISTRY_PACKAGE}` (e.g. `apt-get install {REGISTRY_PACKAGE}`)")
    return found




@dataclass
class Registry:
    """A running registry: `url` is oci://127.0.0.1:<port>/charts."""

    host: str
    process: subprocess.Popen
    log: Path
    username: str = ""
    password: str = ""

    @property
    def url(self) -> str:
        return f"oci://{self.host}/charts"

    def manifest_digest(self, repository: str, tag: str) -> str | None:
        """The digest the registry serves for repository:tag (None when absent)."""
        request = urllib.request.Request(
            f"http://{self.host}/v2/{repository}/manifests/{tag}", method="HEAD",
            headers={"Accept": MANIFEST_TYPES})
        if self.username:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.headers["Docker-Content-Digest"]
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return None
            raise

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # `timeout` passes the signal on to the registry
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # the group we started
                self.process.wait(timeout=10)


def start_registry(binary: str, workdir: Path, auth: tuple[str, str] | None = None) -> Registry:
    port = free_port()
    config: dict = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(workdir / "data")},
                    "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    if auth:
        import bcrypt  # pinned in pyproject; spares a dependency on apache2-utils' htpasswd
        user, password = auth
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=6)).decode()
        (workdir / "htpasswd").write_text(f"{user}:{hashed}\n")
        config["auth"] = {"htpasswd": {"realm": "la-stack-test",
                                       "path": str(workdir / "htpasswd")}}
    config_file = workdir / "config.yml"
    config_file.write_text(yaml.safe_dump(config))
    log = workdir / "registry.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["timeout", str(REGISTRY_LIFETIME_SECONDS), binary, "serve", str(config_file)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    registry = Registry(f"127.0.0.1:{port}", process, log, *(auth or ("", "")))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"docker-registry exited early:\n{log.read_text()}")
        try:
            urllib.request.urlopen(f"http://{registry.host}/v2/", timeout=2).close()
            return registry
        except urllib.error.HTTPError:
            return registry  # 401 with auth: it answers
        except OSError:
            time.sleep(0.2)
    registry.stop()
    pytest.fail(f"docker-registry did not answer on {registry.host} within 30 s")


@pytest.fixture(scope="module")
def registry(registry_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An anonymous registry for the whole module."""
    running = start_registry(registry_binary, tmp_path_factory.mktemp("registry"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def auth_registry(registry_binary: str,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry that wants a username and password (htpasswd, bcrypt)."""
    running = start_registry(registry_binary, tmp_path_factory.mktemp("auth-registry"),
                             auth=("publisher", "s3cret-Only-For-This-Test"))
    yield running
    running.stop()


def isolated_helm_env(home: Path) -> dict[str, str]:
    """An environment whose Helm config, cache and registry logins live under `home`."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"REGISTRY_USERNAME", "REGISTRY_PASSWORD"}}
    env.update({
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_DATA_HOME": str(home / "data"),
        "HELM_REGISTRY_CONFIG": str(home / "config" / "registry" / "config.json"),
    })
    return env
