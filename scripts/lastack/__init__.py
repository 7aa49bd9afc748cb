"""Tooling for the la-stack Helm chart: pinned tools, rendering, validation, docs."""
