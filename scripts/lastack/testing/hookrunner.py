"""The hook runner: on the local control plane it plays the container runtime for hook Pods.

kwok fakes containers, so a hook Job would "succeed" without its program ever running, and
the Secrets the secrets hook creates would never exist (a later `helm upgrade` then fails
in the Bitnami MariaDB chart's password check, as it never would on a real cluster). So the
live tier installs with `hooks.nodeSelector` set to a label every kwok Node carries; kwok
makes those Pods Running but leaves finishing them to this runner, which

- runs the programs in RUN_LOCALLY for real, as the kubelet would: the Pod's command with
  its ConfigMap/Secret/projected volumes written to a temporary directory (the
  ServiceAccount token from the TokenRequest API, bound to the Pod, so the hook's own RBAC
  is what the program gets), its env (secretKeyRef/configMapKeyRef resolved), and
  KUBERNETES_SERVICE_HOST/PORT pointing at the API;
- mounts every other held Pod's volumes too, as a kubelet does before it starts anything
  (so a hook that mounts the CA Secret the ECK operator makes waits for that Secret, and
  fails when it never comes), then ends it with exit code 0 without running it: stand-in,
  because es_bootstrap.py needs a live Elasticsearch, which kwok cannot run;
- writes the outcome into the Pod's status (phase, terminated exit code, message), which
  the Job controller then counts like any kubelet report.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client

from lastack import polling
from lastack.chart.render import ECK_API
from lastack.cluster.kwok import HOOK_RUNNER_LABEL

RUN_LOCALLY = frozenset({"release_secrets.py"})
MAX_RUN_SECONDS = 300
# How long a missing ConfigMap/Secret of a volume is waited for (a kubelet retries forever;
# the Job's own deadline ends it there).
MOUNT_WAIT_SECONDS = 90
ES_GROUP, ES_VERSION = ECK_API.split("/")


@dataclass
class Run:
    pod: str
    program: str
    ran: bool
    exit_code: int
    output: str

    def __str__(self) -> str:
        how = "ran" if self.ran else "completed without running"
        return f"{self.pod} ({self.program}, {how}, exit {self.exit_code})\n{self.output}"


def hold_values() -> dict[str, Any]:
    """Chart values that hand the hook Pods to the runner instead of kwok."""
    return {"hooks": {"nodeSelector": {HOOK_RUNNER_LABEL: "local"}}}


class HookRunner:
    def __init__(self, api: client.ApiClient, server: str, namespace: str) -> None:
        self.core = client.CoreV1Api(api)
        self.server = urllib.parse.urlsplit(server)
        self.namespace = namespace
        self.runs: list[Run] = []
        self.errors: list[str] = []
        self._handled: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"hook-runner-{namespace}",
                                        daemon=True)

    def __enter__(self) -> HookRunner:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=MAX_RUN_SECONDS + 30)

    def report(self) -> str:
        lines = [str(r) for r in self.runs] + [f"runner error: {e}" for e in self.errors]
        return "\n".join(lines) or "(the hook runner saw no hook Pod)"

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            try:
                pods = self.core.list_namespaced_pod(
                    self.namespace, field_selector="status.phase=Running").items
            except client.exceptions.ApiException as err:
                if err.status == 404:
                    continue
                self.errors.append(f"listing pods: {err}")
                continue
            for pod in pods:
                held = HOOK_RUNNER_LABEL in (pod.spec.node_selector or {})
                if not held or pod.metadata.uid in self._handled:
                    continue
                if pod.metadata.deletion_timestamp is not None:
                    continue
                self._handled.add(pod.metadata.uid)
                try:
                    self._handle(pod)
                except Exception as err:  # noqa: BLE001 - reported to the test, not lost
                    self.errors.append(f"{pod.metadata.name}: {type(err).__name__}: {err}")

    # ------------------------------------------------------------------ one Pod

    def _handle(self, pod: client.V1Pod) -> None:
        container = pod.spec.containers[0]
        argv = list(container.command or []) + list(container.args or [])
        program = Path(argv[1]).name if len(argv) > 1 and "python" in argv[0] else argv[0]
        workdir = Path(tempfile.mkdtemp(prefix="la-stack-hook-"))
        # Without an Elasticsearch in the release (its subchart absent) no operator will make
        # the Secrets a hook mounts from it: not waited for, the stand-in completes the Pod.
        made_later = self._elasticsearch_present()
        try:
            mounts = self._mount(pod, container, workdir,
                                 MOUNT_WAIT_SECONDS if made_later else 0)
            if isinstance(mounts, str) and (made_later or program in RUN_LOCALLY):
                run = Run(pod.metadata.name, program, False, 1, mounts)
            elif isinstance(mounts, str):
                run = Run(pod.metadata.name, program, False, 0,
                          f"not mounted, no Elasticsearch in the release: {mounts}")
            elif program not in RUN_LOCALLY:
                run = Run(pod.metadata.name, program, False, 0, "")
            else:
                run = self._execute(pod, container, argv, program, workdir, mounts)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        self.runs.append(run)
        self._finish(pod, container, run)

    def _elasticsearch_present(self) -> bool:
        try:
            found = client.CustomObjectsApi(self.core.api_client).list_namespaced_custom_object(
                ES_GROUP, ES_VERSION, self.namespace, "elasticsearches")
        except client.exceptions.ApiException as err:
            if err.status == 404:  # the API is not served
                return False
            raise
        return bool(found.get("items"))

    def _mount(self, pod: client.V1Pod, container: client.V1Container, workdir: Path,
               wait_seconds: float) -> dict[str, Path] | str:
        """{mount path: local directory}, or why a volume could not be mounted in time."""
        mounts: dict[str, Path] = {}
        volumes = {v.name: v for v in pod.spec.volumes or []}
        for mount in container.volume_mounts or []:
            local = workdir / "volumes" / mount.name

            def attempt(volume: client.V1Volume = volumes[mount.name],
                        local: Path = local) -> polling.Probe:
                try:
                    self._materialize(pod, volume, local)
                except (client.exceptions.ApiException, KeyError) as err:
                    if isinstance(err, client.exceptions.ApiException) and err.status != 404:
                        raise
                    return polling.Probe(state=_reason(err))
                return polling.Probe(done=True)

            try:
                polling.poll(f"volume {mount.name!r}", attempt, wait_seconds, interval=1)
            except polling.WaitTimeout as err:
                return f"MountVolume.SetUp failed: {err}"
            mounts[mount.mount_path.rstrip("/")] = local
        return mounts

    def _execute(self, pod: client.V1Pod, container: client.V1Container, argv: list[str],
                 program: str, workdir: Path, mounts: dict[str, Path]) -> Run:
        def local_path(value: str) -> str:
            for mount_path in sorted(mounts, key=len, reverse=True):
                if value == mount_path or value.startswith(mount_path + "/"):
                    return str(mounts[mount_path]) + value[len(mount_path):]
            return value

        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir),
               "KUBERNETES_SERVICE_HOST": self.server.hostname or "127.0.0.1",
               "KUBERNETES_SERVICE_PORT": str(self.server.port or 443)}
        for var in container.env or []:
            env[var.name] = local_path(self._env_value(pod, var))
        cmd = [sys.executable, *map(local_path, argv[1:])]
        deadline = min(pod.spec.active_deadline_seconds or MAX_RUN_SECONDS, MAX_RUN_SECONDS)
        try:
            proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True,
                                  timeout=deadline, check=False)
            code, output = proc.returncode, (proc.stdout + proc.stderr).strip()
        except subprocess.TimeoutExpired:
            code, output = 124, f"killed after {deadline} s"
        return Run(pod.metadata.name, program, True, code, output)

    def _materialize(self, pod: client.V1Pod, volume: client.V1Volume, target: Path) -> None:
        target.mkdir(parents=True, exist_ok=True)
        ns = self.namespace
        if volume.config_map is not None:
            data = self.core.read_namespaced_config_map(volume.config_map.name, ns).data or {}
            self._write_items(target, data, volume.config_map.items)
        elif volume.secret is not None:
            secret = self.core.read_namespaced_secret(volume.secret.secret_name, ns)
            self._write_items(target, _decode(secret.data), volume.secret.items)
        elif volume.projected is not None:
            for source in volume.projected.sources or []:
                if source.service_account_token is not None:
                    token = self._token(pod, source.service_account_token)
                    (target / source.service_account_token.path).write_text(token)
                elif source.config_map is not None:
                    data = self.core.read_namespaced_config_map(source.config_map.name,
                                                                ns).data or {}
                    self._write_items(target, data, source.config_map.items)
                elif source.secret is not None:
                    secret = self.core.read_namespaced_secret(source.secret.name, ns)
                    self._write_items(target, _decode(secret.data), source.secret.items)
        # emptyDir and anything else: the empty directory made above

    @staticmethod
    def _write_items(target: Path, data: dict[str, str], items: list[Any] | None) -> None:
        paths = {i.key: i.path for i in items} if items else {k: k for k in data}
        for key, rel in paths.items():
            path = target / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(data[key])

    def _token(self, pod: client.V1Pod, source: client.V1ServiceAccountTokenProjection) -> str:
        spec = client.V1TokenRequestSpec(
            audiences=[source.audience] if source.audience else [],
            expiration_seconds=source.expiration_seconds or 3600,
            bound_object_ref=client.V1BoundObjectReference(
                api_version="v1", kind="Pod", name=pod.metadata.name, uid=pod.metadata.uid))
        request = self.core.create_namespaced_service_account_token(
            pod.spec.service_account_name or "default", self.namespace,
            client.AuthenticationV1TokenRequest(spec=spec))
        return request.status.token

    def _env_value(self, pod: client.V1Pod, var: client.V1EnvVar) -> str:
        if var.value_from is None:
            return var.value or ""
        ref = var.value_from
        if ref.secret_key_ref is not None:
            secret = self.core.read_namespaced_secret(ref.secret_key_ref.name, self.namespace)
            return _decode(secret.data)[ref.secret_key_ref.key]
        if ref.config_map_key_ref is not None:
            cm = self.core.read_namespaced_config_map(ref.config_map_key_ref.name,
                                                      self.namespace)
            return (cm.data or {})[ref.config_map_key_ref.key]
        if ref.field_ref is not None:
            fields = {"metadata.name": pod.metadata.name, "metadata.namespace": self.namespace,
                      "spec.serviceAccountName": pod.spec.service_account_name or "default"}
            return fields[ref.field_ref.field_path]
        raise ValueError(f"env {var.name}: unsupported valueFrom")

    def _finish(self, pod: client.V1Pod, container: client.V1Container, run: Run) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        ok = run.exit_code == 0
        terminated = {"exitCode": run.exit_code, "reason": "Completed" if ok else "Error",
                      "startedAt": now, "finishedAt": now, "message": run.output[-2000:]}
        body = {"status": {
            "phase": "Succeeded" if ok else "Failed",
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {"type": "Ready", "status": "False", "reason": "PodCompleted",
                 "lastTransitionTime": now},
                {"type": "ContainersReady", "status": "False", "reason": "PodCompleted",
                 "lastTransitionTime": now}],
            "containerStatuses": [{
                "name": container.name, "image": container.image, "imageID": "",
                "ready": False, "started": False, "restartCount": 0,
                "state": {"terminated": terminated}}]}}
        for attempt in range(5):
            try:
                self.core.patch_namespaced_pod_status(
                    pod.metadata.name, self.namespace, body,
                    _content_type="application/merge-patch+json")
                return
            except client.exceptions.ApiException as err:
                if err.status == 404 or attempt == 4:
                    raise
                time.sleep(0.2)


def _reason(err: Exception) -> str:
    if isinstance(err, client.exceptions.ApiException):
        return f"{err.status} {err.reason}"
    return f"key {err} not found"


def _decode(data: dict[str, str] | None) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (data or {}).items()}
