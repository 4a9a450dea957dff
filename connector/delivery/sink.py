"""The sink contract: how the pipeline hands batches to a delivery, and learns their outcomes."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable

from connector.cancel import CancelToken
from connector.records import Batch, BatchOutcome

OutcomeCallback = Callable[[Batch, BatchOutcome], None]
# Hands out the next batch in query order; None when there are no more. Thread-safe; raises the
# producer's failure, or Cancelled.
TakeBatch = Callable[[], "Batch | None"]


@dataclass(frozen=True)
class DeliveryStats:
    """What a delivery learnt about concurrency, for the report."""

    peak_in_flight: int = 0
    concurrency_limit: int = 0  # at the end of the run
    concurrency_lowered: dict[str, int] = field(default_factory=dict)  # cause -> times


class Sink(ABC):
    """Delivers batches. The lifecycle is open → deliver → commit (or abort) → close.

    `deliver` takes batches and sends them until `take` runs dry; each batch taken gets exactly
    one outcome through the callback given to `open`, settled only as far as it got (a cancelled
    batch reports what was accepted before the cancellation). A problem that makes later batches
    hopeless (refused credentials, retries exhausted) sets `failure` and ends `deliver`; the
    batches not taken stay unsent.
    """

    failure: str | None = None

    def open(self, cancel: CancelToken, on_outcome: OutcomeCallback) -> None:
        self.cancel = cancel
        self.on_outcome = on_outcome

    def deliver(self, take: TakeBatch) -> None:
        """Send every batch `take` hands out. This default sends them one at a time on the
        calling thread; a sink may send several at once."""
        while self.failure is None:
            self.cancel.raise_if_cancelled()
            batch = take()
            if batch is None:
                return
            self.send(batch)
            batch = None  # not held while the next one is taken

    @abstractmethod
    def send(self, batch: Batch) -> None:
        """Deliver one batch on the calling thread; its outcome goes to the callback."""

    def commit(self) -> None:  # noqa: B027 - optional hook
        """Make the delivery final (after `deliver` returned)."""

    def abort(self) -> None:  # noqa: B027 - optional hook
        """Stop at once (on an error or a cancellation during `deliver`)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (after commit or abort, and on any error)."""

    def stats(self) -> DeliveryStats:
        """Concurrency figures for the report (none for a sink that sends nothing)."""
        return DeliveryStats()
