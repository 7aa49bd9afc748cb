"""The local control plane's state file (state.json): what runs, where, and until when."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lastack.paths import TOOLS_DIR

CLUSTER_DIR = TOOLS_DIR / "cluster"
STATE_FILE = CLUSTER_DIR / "state.json"
KUBECONFIG = CLUSTER_DIR / "kubeconfig"


class ClusterError(RuntimeError):
    """The local control plane could not start, or is not running."""


def log(message: str) -> None:
    print(f"[cluster] {message}", file=sys.stderr, flush=True)


@dataclass
class Process:
    name: str
    pid: int  # also its process-group id: each runs in its own session
    binary: str
    log: str


@dataclass
class ClusterState:
    server: str
    kubeconfig: str
    workdir: str  # temporary: PKI, etcd data, logs; removed by `down`
    started: float
    ttl_seconds: int
    nodes: list[str]
    processes: list[Process] = field(default_factory=list)
    # Seconds from spawn to ready, per operator (for `make bench`).
    ready_seconds: dict[str, float] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> ClusterState | None:
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        raw["processes"] = [Process(**p) for p in raw.get("processes", [])]
        return cls(**raw)
