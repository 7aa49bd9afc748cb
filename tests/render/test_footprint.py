"""The demo profile fits a 4-CPU / 8-GiB laptop: requests within 2 CPUs and 6 GiB."""

from __future__ import annotations

from decimal import Decimal

import pytest

from lastack import footprint
from lastack.paths import VALUES_DIR
from lastack.render import present_subcharts
from tests.conftest import requires_subcharts

CPU_BUDGET = Decimal(2)
MEMORY_BUDGET = Decimal(6 * 1024**3)
# What an absent Superset (web, worker, PostgreSQL, Redis) may take in the demo at most.
SUPERSET_RESERVE = (Decimal("0.6"), Decimal(2 * 1024**3))


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
    """The components that are present leave room for the absent ones."""

    def test_should_leave_room_for_what_is_absent(self):
        totals = demo_totals()
        cpu, memory = CPU_BUDGET, MEMORY_BUDGET
        if "superset" not in present_subcharts():
            cpu, memory = cpu - SUPERSET_RESERVE[0], memory - SUPERSET_RESERVE[1]
        assert totals.cpu_request <= cpu
        assert totals.memory_request <= memory

    def test_should_count_elasticsearch_as_eck_runs_it(self):
        steady, _ = footprint.profile_usage(VALUES_DIR / "production.yaml")
        es = steady["elasticsearch"]
        assert es.memory_request == 3 * Decimal(4 * 1024**3), "three nodes of 4Gi"
        assert es.storage == 3 * Decimal(100 * 1024**3)
