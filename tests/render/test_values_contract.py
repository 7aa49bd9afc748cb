"""The choices of the values files that render tests build on, stated once: each render
test asserts what the chart does with them; these say the files still make them."""

from __future__ import annotations

import yaml

from lastack.paths import CHART_DIR, VALUES_DIR

DEFAULTS = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
PRODUCTION = yaml.safe_load((VALUES_DIR / "production.yaml").read_text())


class TestValuesContract:
    """What a user gets without setting anything, and what production.yaml turns on."""

    def test_should_leave_network_policies_off_by_default(self):
        assert DEFAULTS["networkPolicy"]["enabled"] is False

    def test_should_open_the_internet_to_moodle_but_not_ralph(self):
        """Moodle fetches its plugin; Ralph has no reason to leave the cluster."""
        egress = DEFAULTS["networkPolicy"]["internetEgress"]
        assert "moodle" in egress
        assert "ralph" not in egress

    def test_should_autoscale_ralph_in_production(self):
        assert PRODUCTION["ralph"]["autoscaling"]["enabled"] is True
