"""The sink contract: how the pipeline hands batches to a delivery, and learns their outcomes."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable

from connector.cancel import CancelToken
from connector.records import Batch, BatchOutcome

OutcomeCallback = Callable[[Batch, BatchOutcome], None]


class Sink(ABC):
    """Delivers batches. The lifecycle is open → (reserve, send)… → commit or abort → close.

    `send` never raises for a delivery problem: each batch sent gets exactly one outcome through
    the callback given to `open`, possibly later and from another thread, and settled only as
    far as it got (a cancelled batch reports what was accepted before the cancellation). A
    problem that makes later batches hopeless (refused credentials, retries exhausted) sets
    `failure`; `reserve` then returns False.
    """

    failure: str | None = None

    def open(self, cancel: CancelToken, on_outcome: OutcomeCallback) -> None:
        self.cancel = cancel
        self.on_outcome = on_outcome

    def reserve(self) -> bool:
        """Wait until one more batch may be sent; False once the sink has failed.
        Raises Cancelled when the run is cancelled while waiting."""
        self.cancel.raise_if_cancelled()
        return self.failure is None

    @abstractmethod
    def send(self, batch: Batch) -> None:
        """Deliver one batch (after a successful `reserve`)."""

    def commit(self) -> None:  # noqa: B027 - optional hook
        """Wait for every batch's outcome and make the delivery final."""

    def abort(self) -> None:  # noqa: B027 - optional hook
        """Stop at once; batches in flight report what was settled."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (after commit or abort, and on any error)."""
