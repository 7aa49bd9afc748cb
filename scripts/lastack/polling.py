"""The one polling loop: call a probe until it says done, failed, or the deadline passes.

Every wait in the tooling and the tests goes through `poll`, each with a failure condition
that ends it early with the reason (a process that exited, a Job that failed), so a broken
start fails in seconds instead of timing out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

POLL_SECONDS = 0.5


class WaitFailed(AssertionError):
    """The awaited thing reached a state it cannot recover from."""


class WaitTimeout(AssertionError):
    """The deadline passed; the message carries the last observed state."""


@dataclass(frozen=True)
class Probe:
    """One observation: done, failed (with why), or neither; `state` describes it."""

    done: bool = False
    failure: str | None = None
    state: str = ""


def poll(what: str, probe: Callable[[], Probe], timeout: float,
         interval: float = POLL_SECONDS) -> Probe:
    """Call `probe` until done; raise WaitFailed on a failure, WaitTimeout at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        last = probe()
        if last.failure is not None:
            raise WaitFailed(f"{what}: {last.failure}")
        if last.done:
            return last
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"{what}: not done after {timeout:.0f} s; last state: {last.state}")
        time.sleep(interval)
