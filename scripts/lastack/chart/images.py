"""Every container image la-stack runs, from the rendered chart: the one list that the
`artifacthub.io/images` annotation and the air-gapped bundle's `images.txt` share.

Some images are named by no manifest: an operator derives them from a custom resource
(ECK from an `Elasticsearch` resource's version, the Superset operator from a `Superset`
resource's image, CloudNativePG from a `Cluster`'s `imageName`). They are listed too,
because the cluster pulls them. The operators la-stack needs installed first are not part
of the chart; `OPERATOR_IMAGES` names what they run, for the bundle.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from lastack.chart.render import render_chart
from lastack.paths import CHART_DIR
from lastack.tools.controlplane_build import CNPG_VERSION, ECK_VERSION

CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
# ECK's default registry and repository for an Elasticsearch resource without spec.image
# (the operator's --container-registry flag changes the registry part).
ELASTICSEARCH_IMAGE = "docker.elastic.co/elasticsearch/elasticsearch"
# The Superset operator's default repository when a `Superset` resource names only a tag.
SUPERSET_IMAGE = "apache/superset"
# The prerequisite operators' own images: the eck-operator chart's default repository with
# its version as tag, and the image CloudNativePG's release manifest runs.
OPERATOR_IMAGES = (
    f"docker.elastic.co/eck/eck-operator:{ECK_VERSION}",
    f"ghcr.io/cloudnative-pg/cloudnative-pg:{CNPG_VERSION}",
)


def pod_specs(obj: dict) -> Iterator[dict]:
    """The pod specs an object runs, wherever its kind keeps them."""
    spec = obj.get("spec") or {}
    kind = obj.get("kind")
    if kind == "Pod":
        yield spec
    elif kind == "CronJob":
        yield ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template", {}).get(
            "spec") or {}
    elif isinstance((spec.get("template") or {}).get("spec"), dict):
        # Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, ReplicationController.
        yield spec["template"]["spec"]
    if kind == "Elasticsearch":
        for node_set in spec.get("nodeSets") or []:
            yield (node_set.get("podTemplate") or {}).get("spec") or {}


def images_of(obj: dict) -> set[str]:
    images = {container["image"]
              for pod in pod_specs(obj)
              for key in CONTAINER_LISTS
              for container in pod.get(key) or []
              if container.get("image")}
    if obj.get("kind") == "Elasticsearch" and obj.get("apiVersion", "").startswith(
            "elasticsearch.k8s.elastic.co/"):
        # The operator picks the image from spec.version unless spec.image overrides it; the
        # rendered manifest never names it, yet the cluster pulls it.
        spec = obj.get("spec") or {}
        images.add(spec.get("image") or f"{ELASTICSEARCH_IMAGE}:{spec['version']}")
    return images | operated_images(obj)


def operated_images(obj: dict) -> set[str]:
    """Images an operator pulls for a resource whose manifest names no container: the
    `Superset` resource's `spec.image`, a CloudNativePG `Cluster`'s `spec.imageName`."""
    spec = obj.get("spec") or {}
    api = obj.get("apiVersion", "")
    if obj.get("kind") == "Superset" and api.startswith("superset.apache.org/"):
        image = spec.get("image") or {}
        return {f"{image.get('repository', SUPERSET_IMAGE)}:{image['tag']}"}
    if obj.get("kind") == "Cluster" and api.startswith("postgresql.cnpg.io/") and spec.get(
            "imageName"):
        return {spec["imageName"]}
    return set()


def qualified(image: str) -> str:
    """The full reference a short Docker Hub name stands for (`busybox` is
    `docker.io/library/busybox`): two spellings of one image compare equal."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return image
    return f"docker.io/{image}" if rest else f"docker.io/library/{image}"


def repository(image: str) -> str:
    """The repository an image reference names, without its tag or digest
    (`ghcr.io/a/b:1@sha256:…` is `ghcr.io/a/b`; a registry's port is kept)."""
    path = image.split("@", 1)[0]
    head, _, last = path.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


def stack_images(objects: Iterable[dict]) -> list[str]:
    return sorted(set().union(*(images_of(o) for o in objects)))


def chart_images(values_files: Sequence[Path] = (), *, helm: str = "helm4",
                 chart_dir: Path = CHART_DIR) -> list[str]:
    """The images of the chart rendered with these values (default: every component on)."""
    return stack_images(render_chart(values_files=values_files, helm=helm, chart_dir=chart_dir))
