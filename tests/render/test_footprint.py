"""The demo profile fits a 4-CPU / 8-GiB laptop: requests within 2 CPUs and 6 GiB."""

from __future__ import annotations

from decimal import Decimal

import pytest
import yaml

from lastack.chart import footprint
from lastack.chart.render import present_subcharts, render_chart
from lastack.paths import CHART_DIR, VALUES_DIR
from tests.helpers import requires_subcharts

CPU_BUDGET = Decimal(2)
MEMORY_BUDGET = Decimal(6 * 1024**3)
# Subcharts whose long-running containers our values size (requests under `resources`).
SIZED_SUBCHARTS = ("superset-operator", "valkey")


def declared_requests(name: str) -> tuple[Decimal, Decimal]:
    """(cpu, memory) our values request for a subchart's one Pod, for when its chart is
    absent and cannot be rendered."""
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())[name]
    demo = (yaml.safe_load((VALUES_DIR / "demo.yaml").read_text()) or {}).get(name, {})
    assert "resources" not in demo, "then merge the demo overlay"
    requests = values["resources"]["requests"]
    return footprint.quantity(requests["cpu"]), footprint.quantity(requests["memory"])


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
    """Rendered components plus the declared requests of the sized subcharts that are absent."""

    def test_should_fit_with_absent_subcharts_as_our_values_size_them(self):
        totals = demo_totals()
        cpu, memory = CPU_BUDGET, MEMORY_BUDGET
        for name in SIZED_SUBCHARTS:
            if name not in present_subcharts():
                sub_cpu, sub_memory = declared_requests(name)
                assert sub_cpu > 0 and sub_memory > 0
                cpu, memory = cpu - sub_cpu, memory - sub_memory
        assert totals.cpu_request <= cpu
        assert totals.memory_request <= memory

    def test_should_count_elasticsearch_as_eck_runs_it(self):
        steady, _ = footprint.profile_usage(VALUES_DIR / "production.yaml")
        es = steady["elasticsearch"]
        assert es.memory_request == 3 * Decimal(4 * 1024**3), "three nodes of 4Gi"
        assert es.storage == 3 * Decimal(100 * 1024**3)


class TestOperatedResources:
    """Superset and its metastore count from their resources, as their operators run them."""

    def test_should_count_superset_components_and_the_metastore_instances(self):
        steady, transient = footprint.usage_by_component(render_chart(
            values_files=[VALUES_DIR / "production.yaml"], subcharts=()))
        values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())["superset"]
        web, worker, beat = (footprint.quantity(values[c]["resources"]["requests"]["memory"])
                             for c in ("webServer", "celeryWorker", "celeryBeat"))
        # production: two web servers, two workers, one beat; three metastore instances.
        assert steady["superset"].memory_request == 2 * web + 2 * worker + beat
        pg = footprint.quantity(values["metastore"]["resources"]["requests"]["memory"])
        assert steady["superset-metastore"].memory_request == 3 * pg
        assert steady["superset-metastore"].storage == 3 * Decimal(10 * 1024**3)
        assert transient["superset-lifecycle"].memory_request == footprint.quantity(
            values["lifecycleResources"]["requests"]["memory"])

    def test_should_count_superset_in_the_demo_without_any_subchart(self):
        steady, _ = footprint.usage_by_component(render_chart(
            values_files=[VALUES_DIR / "demo.yaml"], subcharts=()))
        assert steady["superset"].cpu_request > 0
        assert steady["superset-metastore"].cpu_request > 0
