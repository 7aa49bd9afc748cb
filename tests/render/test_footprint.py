"""The demo profile fits a 4-CPU / 8-GiB laptop: requests within 2 CPUs and 6 GiB."""

from __future__ import annotations

from decimal import Decimal

import pytest
import yaml

from lastack import footprint
from lastack.paths import CHART_DIR, VALUES_DIR
from lastack.render import present_subcharts
from tests.conftest import requires_subcharts

CPU_BUDGET = Decimal(2)
MEMORY_BUDGET = Decimal(6 * 1024**3)
# Where our values size Superset's long-running containers (web, worker, PostgreSQL, Redis).
SUPERSET_RESOURCES = ("supersetNode", "supersetWorker", "postgresql.primary", "redis.master")


def declared_superset_requests() -> tuple[Decimal, Decimal]:
    """(cpu, memory) requested by Superset as our values size it, for when its chart is
    absent and cannot be rendered (one replica each, as in the demo)."""
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())["superset"]
    demo = (yaml.safe_load((VALUES_DIR / "demo.yaml").read_text()) or {}).get("superset", {})
    assert not {"supersetNode", "supersetWorker"} & set(demo), "then merge the demo overlay"
    cpu = memory = Decimal(0)
    for path in SUPERSET_RESOURCES:
        node = values
        for key in path.split("."):
            node = node[key]
        requests = node["resources"]["requests"]
        cpu += footprint.quantity(requests["cpu"])
        memory += footprint.quantity(requests["memory"])
    return cpu, memory


def demo_totals() -> footprint.Usage:
    steady, _ = footprint.profile_usage(VALUES_DIR / "demo.yaml")
    return footprint.total(steady.values())


class TestQuantities:
    """Kubernetes quantities are read as Kubernetes reads them."""

    @pytest.mark.parametrize(("text", "value"), [
        ("250m", Decimal("0.25")), ("2", Decimal(2)), ("1.5", Decimal("1.5")),
        ("512Mi", Decimal(512 * 1024**2)), ("2Gi", Decimal(2 * 1024**3)), ("1G", Decimal(10**9)),
    ])
    def test_should_parse(self, text, value):
        assert footprint.quantity(text) == value


@requires_subcharts()
class TestDemoBudget:
    """With every component rendered, the demo profile stays within the laptop budget."""

    def test_should_request_at_most_two_cpus_and_six_gib(self):
        totals = demo_totals()
        assert totals.cpu_request <= CPU_BUDGET
        assert totals.memory_request <= MEMORY_BUDGET


@pytest.mark.skipif(not present_subcharts(), reason="no subchart archive vendored (make deps)")
class TestDemoBudgetOfPresentComponents:
    """Rendered components plus Superset's declared requests (its chart is absent here)."""

    def test_should_fit_with_superset_as_our_values_size_it(self):
        totals = demo_totals()
        cpu, memory = CPU_BUDGET, MEMORY_BUDGET
        if "superset" not in present_subcharts():
            superset_cpu, superset_memory = declared_superset_requests()
            assert superset_cpu > 0 and superset_memory > 0
            cpu, memory = cpu - superset_cpu, memory - superset_memory
        assert totals.cpu_request <= cpu
        assert totals.memory_request <= memory

    def test_should_count_elasticsearch_as_eck_runs_it(self):
        steady, _ = footprint.profile_usage(VALUES_DIR / "production.yaml")
        es = steady["elasticsearch"]
        assert es.memory_request == 3 * Decimal(4 * 1024**3), "three nodes of 4Gi"
        assert es.storage == 3 * Decimal(100 * 1024**3)
