"""The concurrency limiter's rules, on a clock the test moves (no network, no sleeping)."""
from __future__ import annotations

import threading

import pytest

from connector import CancelToken
from connector.delivery import ConcurrencyLimiter
from connector.errors import Cancelled


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def full_window(limiter: ConcurrencyLimiter, cancel: CancelToken) -> None:
    """`limit` successes, each arriving while every slot was busy (a new request starting as
    each one ends, as senders with batches waiting do); then the pipe drains quietly."""
    epochs = [limiter.acquire(cancel) for _ in range(limiter.limit)]
    for _ in range(len(epochs)):
        limiter.release(epochs.pop(0), success=True)
        while limiter.in_flight < limiter.limit:
            epochs.append(limiter.acquire(cancel))
    for epoch in epochs:
        limiter.release(epoch)


def test_starts_at_two_and_grows_one_per_full_window_up_to_the_ceiling():
    limiter, cancel = ConcurrencyLimiter(5, adaptive=True, clock=Clock()), CancelToken()
    assert limiter.limit == 2
    seen = []
    for _ in range(6):
        full_window(limiter, cancel)
        seen.append(limiter.limit)
    assert seen == [3, 4, 5, 5, 5, 5]


def test_no_growth_while_the_pipe_is_not_full():
    limiter, cancel = ConcurrencyLimiter(8, adaptive=True, clock=Clock()), CancelToken()
    for _ in range(50):  # one request at a time, never filling two slots
        limiter.release(limiter.acquire(cancel), success=True)
    assert limiter.limit == 2


def test_pushback_halves_once_per_round_and_never_below_one():
    limiter, cancel = ConcurrencyLimiter(8, adaptive=True, clock=Clock()), CancelToken()
    for _ in range(4):
        full_window(limiter, cancel)
    assert limiter.limit == 6
    epochs = [limiter.acquire(cancel) for _ in range(6)]
    for epoch in epochs:  # six answers to the same round of requests: one decrease
        limiter.release(epoch, pushback="429")
    assert limiter.limit == 3 and limiter.lowered == {"429": 1}
    for cause in ("timeout", "503", "503"):
        limiter.release(limiter.acquire(cancel), pushback=cause)
    assert limiter.limit == 1
    assert limiter.lowered == {"429": 1, "timeout": 1}  # at 1, a 503 lowers nothing


def test_a_plain_failure_neither_grows_nor_lowers():
    limiter, cancel = ConcurrencyLimiter(8, adaptive=True, clock=Clock()), CancelToken()
    epochs = [limiter.acquire(cancel) for _ in range(2)]
    for epoch in epochs:
        limiter.release(epoch)  # e.g. a 500, retried at the same limit
    assert limiter.limit == 2 and not limiter.lowered


def test_the_level_it_pushed_back_at_is_probed_only_after_a_quiet_period():
    clock = Clock()
    limiter, cancel = ConcurrencyLimiter(8, adaptive=True, probe_seconds=10, clock=clock), CancelToken()
    for _ in range(3):
        full_window(limiter, cancel)
    assert limiter.limit == 5
    limiter.release(limiter.acquire(cancel), pushback="429")  # pushed back at 5
    assert limiter.limit == 2
    for _ in range(10):
        full_window(limiter, cancel)
    assert limiter.limit == 4  # back below 5, and holding
    clock.now += 11
    full_window(limiter, cancel)
    assert limiter.limit == 5  # the probe
    full_window(limiter, cancel)  # a full window at 5: it takes more now
    full_window(limiter, cancel)
    assert limiter.limit == 7


def test_fixed_mode_is_the_ceiling_whatever_happens():
    limiter, cancel = ConcurrencyLimiter(6, adaptive=False, clock=Clock()), CancelToken()
    assert limiter.limit == 6
    limiter.release(limiter.acquire(cancel), pushback="429")
    full_window(limiter, cancel)
    assert limiter.limit == 6 and not limiter.lowered


def test_retry_after_holds_every_request_back():
    clock = Clock()
    limiter, cancel = ConcurrencyLimiter(4, adaptive=False, clock=clock), CancelToken()
    limiter.hold(5)
    started = threading.Event()

    def request() -> None:
        limiter.release(limiter.acquire(cancel), success=True)
        started.set()

    thread = threading.Thread(target=request)
    thread.start()
    assert not started.wait(0.3)  # the gate is closed although slots are free
    clock.now += 5
    assert started.wait(2)
    thread.join()


def test_waiting_for_a_slot_ends_on_cancellation():
    limiter, cancel = ConcurrencyLimiter(1, adaptive=False, clock=Clock()), CancelToken()
    limiter.acquire(cancel)
    errors = []

    def second() -> None:
        try:
            limiter.acquire(cancel)
        except Cancelled as exc:
            errors.append(exc)

    thread = threading.Thread(target=second)
    thread.start()
    cancel.cancel()
    thread.join(2)
    assert not thread.is_alive() and len(errors) == 1


@pytest.mark.parametrize("ceiling", [1, 2, 32])
def test_the_peak_is_recorded(ceiling):
    limiter, cancel = ConcurrencyLimiter(ceiling, adaptive=False, clock=Clock()), CancelToken()
    epochs = [limiter.acquire(cancel) for _ in range(ceiling)]
    for epoch in epochs:
        limiter.release(epoch, success=True)
    assert limiter.peak_in_flight == ceiling and limiter.in_flight == 0
