"""One export run: source → plugin encoder → batches → sink, with the JobReport as the ledger.

Two threads overlap CPU and network while keeping query order:
- the producer (a worker thread) fetches partitions, encodes rows and cuts batches;
- the sender (the calling thread) delivers batches one by one.
The sender is the main thread on purpose: Ctrl-C (and SIGTERM, which the CLI turns into the same
thing) then interrupts a retry wait or a request in flight at once.
A BatchBuffer between them keeps memory flat and spills to disk when the sender falls behind, so
the engine keeps being read during a long retry wait. In strict mode (ignore_invalid_records = false)
the producer spools every encoded record to a temporary file and releases batches only when the
whole result proved valid.
"""
from __future__ import annotations

import tempfile
import threading
from contextlib import ExitStack
from dataclasses import dataclass
from queue import Empty, Full, Queue
from typing import IO, Any, Callable, Iterator, Sequence

from connector.buffer import BatchBuffer
from connector.errors import ConfigError, ConnectorError, SourceError
from connector.plugins.base import Batch, BatchOutcome, InvalidRecord, OutputPlugin, Pushdown, Sink
from connector.report import JobReport
from connector.source import Source, Stream


# Encoded records waiting in memory between producer and sender, at most (beyond: spill file).
MEMORY_RECORDS = 20_000
# Arrow batches the engine may compute ahead of the encoder.
PREFETCH_BATCHES = 2


class _Done:
    pass


@dataclass
class _Failure:
    exc: BaseException


def prefetch(items: Iterator[Any], depth: int, stop: threading.Event) -> Iterator[Any]:
    """`items`, read ahead by a thread: the engine computes the next batches (without the GIL)
    while this thread encodes the current one. Both sides give up once `stop` is set."""
    queue: Queue[Any] = Queue(maxsize=depth)
    end = object()

    def offer(item: Any) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def run() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
        except BaseException as exc:  # noqa: BLE001 - re-raised in the reading thread
            offer(_Failure(exc))
            return
        offer(end)

    threading.Thread(target=run, name="connector-prefetch", daemon=True).start()
    while True:
        try:
            item = queue.get(timeout=0.1)
        except Empty:
            if stop.is_set():
                return
            continue
        if item is end:
            return
        if isinstance(item, _Failure):
            raise item.exc
        yield item


def check_columns(plugin: OutputPlugin, columns: Sequence[str]) -> list[str]:
    """Raise ConfigError for missing required or ambiguous columns; return warnings."""
    lowered = [c.lower() for c in columns]
    dupes = sorted({c for c in lowered if lowered.count(c) > 1})
    if dupes:
        raise ConfigError("the query returns these columns more than once (names are matched "
                          "without regard to case): " + ", ".join(dupes))
    missing = [c for c in plugin.required_columns if c not in lowered]
    if missing:
        raise ConfigError(
            f"the query lacks required column(s) {', '.join(missing)} for {plugin.type} "
            f"(it returns: {', '.join(columns) or 'none'})"
        )
    unknown = [c for c in columns if c.lower() not in plugin.known_columns]
    return [f"column {c!r} is not a {plugin.type} column and is ignored "
            f"(known: {', '.join(plugin.known_columns)})" for c in unknown]


class ExportJob:
    def __init__(self, plugin: OutputPlugin, source: Source, report: JobReport,
                 dry_run_path: str | None = None,
                 on_warning: Callable[[str], None] | None = None,
                 pushdown: bool = True) -> None:
        self.plugin = plugin
        self.use_pushdown = pushdown
        self.source = source
        self.report = report
        self.dry_run_path = dry_run_path
        self.on_warning = on_warning or (lambda _m: None)
        self._stop = threading.Event()
        # Set by the CLI's signal handler: an engine may turn the interrupt into its own error.
        self.interrupted = False
        # Up to MEMORY_RECORDS records wait in memory; a bigger batch (100,000 events hold
        # ~65 MB) is handed straight to the sender, so at most two exist: built and in flight.
        self._buffer = BatchBuffer(
            memory_batches=min(20, MEMORY_RECORDS // max(1, plugin.batch_size)))

    # ------------------------------------------------------------------ public
    def run(self, sql: str) -> JobReport:
        report = self.report
        try:
            with ExitStack() as stack:
                stream, pushdown = self._open(sql, stack)
                self._run_stream(stream, pushdown)
        except KeyboardInterrupt:
            report.fail("interrupted", "the export was interrupted")
        except ConfigError:
            raise
        except ConnectorError as exc:
            if self.interrupted:
                report.fail("interrupted", "the export was interrupted")
            else:
                report.fail(type(exc).__name__.replace("Error", "").lower() + "_error", str(exc))
        finally:
            report.finish()
        return report

    # ------------------------------------------------------------------ internals
    def _warn(self, warnings: list[str]) -> None:
        for w in warnings:
            self.report.warnings.append(w)
            self.on_warning(w)

    def _open(self, sql: str, stack: ExitStack) -> tuple[Stream, Pushdown | None]:
        """The query's stream: Arrow batches with the plugin's SQL around it when the engine
        and the plugin support it, else rows."""
        described = self.source.describe(sql) if self.use_pushdown else None
        if self.interrupted:  # DuckDB turns the signal into its own error: not a reason to retry
            raise KeyboardInterrupt
        if described is not None:
            self._warn(check_columns(self.plugin, [name for name, _ in described]))
            pushdown = self.plugin.pushdown(sql, self.source.dialect, described)
            if pushdown is not None:
                try:
                    return stack.enter_context(self.source.stream_arrow(pushdown.sql)), pushdown
                except SourceError as exc:
                    if self.interrupted:
                        raise KeyboardInterrupt from None
                    # A bug in the compiled SQL must not stop an export the rows can do.
                    self._warn([f"encoding rows in Python: the engine refused the compiled "
                                f"query ({exc})"])
        stream = stack.enter_context(self.source.stream(sql))
        if described is None:
            self._warn(check_columns(self.plugin, stream.columns))
        return stream, None

    def _run_stream(self, stream: Stream, pushdown: Pushdown | None) -> None:
        sink: Sink = (self.plugin.dry_run_sink(self.dry_run_path) if self.dry_run_path
                      else self.plugin.sink())
        producer = threading.Thread(target=self._produce, args=(stream, pushdown),
                                    name="connector-producer", daemon=True)
        producer.start()
        try:
            self._send_all(sink)
        finally:
            self._stop.set()
            self._drain(producer, stream)
            self.report.spilled_batches = self._buffer.spilled_batches
            self._buffer.close()
            sink.close()

    def _send_all(self, sink: Sink) -> None:
        while True:
            item = self._buffer.get()
            if isinstance(item, _Done):
                return
            if isinstance(item, _Failure):
                raise item.exc
            outcome = BatchOutcome()
            try:
                sink.send(item, outcome)
            finally:
                self.report.apply(outcome)
            item = None  # don't hold the sent batch while waiting for the next one
            if outcome.fatal:
                self.report.fail("send_failed", outcome.error)
                return

    def _drain(self, producer: threading.Thread, stream: Stream) -> None:
        """Stop the producer (it checks the stop flag); rows read but not sent end up `failed`."""
        producer.join(timeout=5)
        if producer.is_alive():  # blocked inside the engine's fetch: cancel the query under it
            stream.cancel()
            producer.join(timeout=5)

    def _produce(self, stream: Stream, pushdown: Pushdown | None) -> None:
        try:
            records = (self._encode_rows(stream, self.plugin.encoder(stream.columns))
                       if pushdown is None else self._encode_batches(stream, pushdown))
            if self.plugin.ignore_invalid_records:
                self._produce_batches(records)
            else:
                with tempfile.TemporaryFile(prefix="connector-spool-") as spool:
                    count = self._spool(records, spool)
                    if self._stop.is_set():
                        return
                    if self.report.invalid_records:
                        self.report.fail(
                            "invalid_records",
                            f"{self.report.invalid_records} invalid rows and "
                            "ignore_invalid_records is false: nothing was sent",
                        )
                        return
                    spool.seek(0)
                    self._produce_batches(_read_spool(spool, count))
        except BaseException as exc:  # noqa: BLE001 - handed to the sender thread
            self._buffer.finish(_Failure(exc))
        finally:
            self._buffer.finish(_Done())

    def _invalid(self, columns: Sequence[str]) -> Callable[[int, InvalidRecord, Sequence[Any]], None]:
        """Reports an invalid row, with a sample of its value (masked unless visible)."""
        lowered = {c.lower(): i for i, c in enumerate(columns)}
        visible = self.plugin.visible_columns
        add = self.report.add_invalid

        def invalid(row_no: int, err: InvalidRecord, row: Sequence[Any]) -> None:
            column = err.column.split(".", 1)[0]
            idx = lowered.get(column)
            add(row_no, err.column, err.rule, err.reason, None if idx is None else row[idx],
                column in visible)

        return invalid

    def _encode_batches(self, stream: Stream, pushdown: Pushdown) -> Iterator[tuple[int, bytes]]:
        """As _encode_rows, from Arrow batches the engine encoded; the rows it left to the
        reference are converted to Python and encoded one by one."""
        report = self.report
        invalid = self._invalid(pushdown.columns)
        refresh = getattr(pushdown.encoder, "refresh_clock", None)
        row_no = report.rows_read
        for batch in prefetch(stream.partitions, PREFETCH_BATCHES, self._stop):
            if self._stop.is_set():
                return
            if refresh is not None:
                refresh()
            records, by_engine, invalid_rows = pushdown.encode_all(batch)
            report.engine_encoded_rows += by_engine
            for i, err, row in invalid_rows:
                invalid(row_no + i + 1, err, row)
            # The whole batch has left the engine before any of it is sent.
            report.rows_read = row_no + len(records)
            for i, record in enumerate(records, row_no + 1):
                if record is not None:
                    yield i, record
            row_no += len(records)

    def _encode_rows(self, stream: Stream, encoder: Any) -> Iterator[tuple[int, bytes]]:
        """(row number, encoded record) for valid rows; invalid rows go to the report."""
        report = self.report
        invalid = self._invalid(stream.columns)
        encode = encoder.encode
        refresh = getattr(encoder, "refresh_clock", None)
        row_no = report.rows_read
        try:
            for partition in stream.partitions:
                if self._stop.is_set():
                    return
                if refresh is not None:
                    refresh()
                for row in partition:
                    row_no += 1
                    try:
                        record = encode(row)
                    except InvalidRecord as err:
                        invalid(row_no, err, row)
                        continue
                    # Kept current per row: the progress line must never show more events
                    # sent than rows read.
                    report.rows_read = row_no
                    yield row_no, record
                report.rows_read = row_no
        finally:
            # Also when the consumer stops early: a row counts as read once it left the engine.
            report.rows_read = row_no

    def _produce_batches(self, records: Iterator[tuple[int, bytes]]) -> None:
        size = self.plugin.batch_size
        index = 0
        rows: list[int] = []
        recs: list[bytes] = []
        for row_no, record in records:
            rows.append(row_no)
            recs.append(record)
            if len(recs) >= size:
                index += 1
                if not self._offer(Batch(index, recs, rows)):
                    return
                rows, recs = [], []
        if recs:
            self._offer(Batch(index + 1, recs, rows))

    def _offer(self, batch: Batch) -> bool:
        """Hand a batch to the sender unless the job is stopping."""
        return self._buffer.put(batch, self._stop)

    def _spool(self, records: Iterator[tuple[int, bytes]], spool: IO[bytes]) -> int:
        count = 0
        for row_no, record in records:
            # orjson escapes control characters, so an encoded record never holds a newline.
            spool.write(b"%d\t%s\n" % (row_no, record))
            count += 1
        return count


def _read_spool(spool: IO[bytes], count: int) -> Iterator[tuple[int, bytes]]:
    for _ in range(count):
        line = spool.readline()
        row, _, record = line.rstrip(b"\n").partition(b"\t")
        yield int(row), record
