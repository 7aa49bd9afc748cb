"""Shipping the chart: package, publish to OCI, the air-gapped bundle."""
