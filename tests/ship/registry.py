"""A real OCI registry on loopback (Debian's `docker-registry`), started for a test module."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from lastack import polling
from lastack.net import free_port

REGISTRY_PACKAGE = "docker-registry"
# The registry stops on its own after this long, even if the test process dies.
REGISTRY_LIFETIME_SECONDS = 900
MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


def install_registry() -> str | None:
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

    def answers() -> polling.Probe:
        if process.poll() is not None:
            return polling.Probe(failure=f"it exited early:\n{log.read_text()}")
        try:
            urllib.request.urlopen(f"http://{registry.host}/v2/", timeout=2).close()
        except urllib.error.HTTPError:
            pass  # 401 with auth: it answers
        except OSError as err:
            return polling.Probe(state=str(err))
        return polling.Probe(done=True)

    try:
        polling.poll(f"docker-registry on {registry.host}", answers, 30, interval=0.2)
    except (polling.WaitFailed, polling.WaitTimeout) as err:
        registry.stop()
        pytest.fail(str(err), pytrace=False)
    return registry
