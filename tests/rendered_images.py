"""The images a render makes a cluster pull, found by walking every object, independently
of `lastack.chart.images` (which knows where each kind keeps its pods)."""

from __future__ import annotations

CONTAINER_KEYS = {"containers", "initContainers", "ephemeralContainers"}


def walked_images(node: object) -> set[str]:
    """Every `image` of every container list anywhere in the render, found by walking all
    of it (not by knowing where each kind keeps its pods)."""
    found: set[str] = set()
    if isinstance(node, dict):
        if node.get("kind") == "Elasticsearch":
            spec = node.get("spec") or {}
            # Not written in the manifest; ECK pulls this when spec.image is unset.
            found.add(spec.get("image")
                      or f"docker.elastic.co/elasticsearch/elasticsearch:{spec['version']}")
        if node.get("kind") == "Superset":
            # The operator runs every component and task from spec.image.
            image = node["spec"]["image"]
            found.add(f"{image['repository']}:{image['tag']}")
        if node.get("kind") == "Cluster" and node["spec"].get("imageName"):
            found.add(node["spec"]["imageName"])
        for key, value in node.items():
            if key in CONTAINER_KEYS and isinstance(value, list):
                found |= {c["image"] for c in value if isinstance(c, dict) and c.get("image")}
            found |= walked_images(value)
    elif isinstance(node, list):
        for item in node:
            found |= walked_images(item)
    return found


def full_reference(image: str) -> str:
    """Docker's reading of a short name: `busybox` is `docker.io/library/busybox`."""
    parts = image.split("/")
    if len(parts) == 1:
        return f"docker.io/library/{image}"
    if "." in parts[0] or ":" in parts[0] or parts[0] == "localhost":
        return image
    return f"docker.io/{image}"
