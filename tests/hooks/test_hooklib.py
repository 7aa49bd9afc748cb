"""hooklib.py, shared by every hook program: backoff, retries and the deadline."""

from __future__ import annotations

import pytest

from lastack.testing.services.hookfiles import import_hook

pytestmark = pytest.mark.hooks
hooklib = import_hook("hooklib")


class TestHooklib:
    """Transient failures are retried within one deadline."""

    def test_backoff_grows_is_capped_and_jittered(self):
        delay = hooklib.backoff_delays(first=1, cap=8)
        samples = [[delay(n) for _ in range(200)] for n in range(8)]
        assert all(0.2 <= d <= 8 for row in samples for d in row)
        assert max(samples[0]) <= 1 and max(samples[7]) > 4
        assert len({round(d, 3) for d in samples[5]}) > 50

    def test_retry_gives_up_at_the_deadline_with_one_sentence(self):
        deadline = hooklib.Deadline(0.5)
        calls = []

        def flaky():
            calls.append(1)
            raise hooklib.TransientError("connection refused")

        with pytest.raises(hooklib.HookError) as raised:
            hooklib.retry(flaky, "waiting for the API", deadline, lambda n: 0.1)
        assert 2 <= len(calls) <= 10
        assert "gave up waiting for the API" in str(raised.value)
        assert "connection refused" in str(raised.value)

    def test_deadline_reads_its_environment_variable(self, monkeypatch):
        monkeypatch.setenv("DEADLINE_SECONDS", "12")
        assert hooklib.Deadline.from_env().seconds == 12
        monkeypatch.setenv("DEADLINE_SECONDS", "soon")
        with pytest.raises(hooklib.HookError, match="DEADLINE_SECONDS"):
            hooklib.Deadline.from_env()
