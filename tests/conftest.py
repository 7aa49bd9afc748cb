"""Shared pytest configuration: the live tier's remote-cluster flag and the Helm fixture.
Helpers the tests import live in tests/helpers.py."""

from __future__ import annotations

import pytest

from lastack.cluster.cluster_target import ALLOW_REMOTE_FLAG
from tests.helpers import HELM_VERSIONS


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(ALLOW_REMOTE_FLAG, action="store_true", default=False,
                     help="let the live tier use a cluster named by --kubeconfig or "
                          "LA_STACK_KUBECONFIG whose API server is not on loopback")


@pytest.fixture(params=HELM_VERSIONS)
def helm(request: pytest.FixtureRequest) -> str:
    """The Helm binary name (`helm3` or `helm4`) a case renders with."""
    return request.param
