"""The dry run: the exact request bodies written to a file, one JSON array per line; nothing sent."""
from __future__ import annotations

from connector.cancel import CancelToken
from connector.records import Batch, BatchOutcome

from .body import JsonArrayBody
from .sink import OutcomeCallback, Sink


class DryRunSink(Sink):
    def __init__(self, path: str) -> None:
        self._path = path
        self._file = None

    def open(self, cancel: CancelToken, on_outcome: OutcomeCallback) -> None:
        super().open(cancel, on_outcome)
        self._file = open(self._path, "wb")  # noqa: SIM115 - closed in close()

    def send(self, batch: Batch) -> None:
        assert self._file is not None
        self._file.writelines(JsonArrayBody(batch.records))
        self._file.write(b"\n")
        self.on_outcome(batch, BatchOutcome(accepted=list(batch.rows)))

    def commit(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
