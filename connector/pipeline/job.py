"""One export run: source → output encoder → batches → sink, with the JobReport as the ledger.

Threads overlap CPU and network while keeping query order:
- the producer (a worker thread) fetches partitions, encodes rows and cuts batches;
- the sender (the calling thread) hands batches to the sink, which sends them (an HTTP sink with
  several requests in flight adds a sender thread for each further one).
A BatchBuffer between producer and sender keeps memory flat and spills to disk when the sender
falls behind, so the engine keeps being read during a long retry wait. In strict mode
(ignore_invalid_records = false) the producer spools every encoded record to a temporary file and
releases batches only when the whole result proved valid.

Cancellation is a CancelToken: the sender wakes from any wait within a tenth of a second, the
sink cancels its requests, and the source interrupts the engine.
"""
from __future__ import annotations

import datetime as dt
import tempfile
import threading
from contextlib import ExitStack
from typing import Any, Callable, Mapping

from connector.cancel import CancelToken
from connector.delivery import Sink
from connector.errors import Cancelled, ConfigError, ConnectorError, InvalidRecordsError, SourceError
from connector.mapping import ColumnBinding, OutputMapping, bind_columns, compile_mapping
from connector.outputs.base import InvalidRecord, OutputPlugin, Pushdown, RecordEncoder
from connector.records import Batch
from connector.report import JobReport
from connector.source import Shard, Source, Stream, shard_sql
from connector.wording import plural

from .batching import Records, cut_batches, read_spool, spool
from .buffer import BatchBuffer
from .outcomes import OutcomeSequencer
from .prefetch import Failure, prefetch

# Encoded records waiting in memory between producer and sender, at most (beyond: spill file).
MEMORY_RECORDS = 20_000
# Arrow batches the engine may compute ahead of the encoder.
PREFETCH_BATCHES = 2


class _Done:
    """The producer's last item: every batch has been handed over."""


class ExportJob:
    def __init__(self, plugin: OutputPlugin, source: Source, report: JobReport, *,
                 cancel: CancelToken, dry_run_path: str | None = None,
                 on_warning: Callable[[str], None] | None = None,
                 pushdown: bool = True, mapping: OutputMapping | None = None,
                 export_time: dt.datetime | None = None, shard: Shard | None = None) -> None:
        self.plugin = plugin
        self.use_pushdown = pushdown
        self.source = source
        self.report = report
        self.cancel = cancel
        self.dry_run_path = dry_run_path
        self.on_warning = on_warning or (lambda _m: None)
        self.mapping = mapping or OutputMapping()
        self.export_time = export_time or dt.datetime.now(dt.timezone.utc)
        self.shard = shard
        # Output column (lower case) -> the query column it renames, for invalid-row messages.
        self._renamed: Mapping[str, str] = {}
        self._stop = threading.Event()
        # Up to MEMORY_RECORDS records wait in memory; a bigger batch (100,000 events hold
        # ~65 MB) is handed straight to the sender, so at most two exist: built and in flight.
        self._buffer = BatchBuffer(
            memory_batches=min(20, MEMORY_RECORDS // max(1, plugin.batch_size)))

    # ------------------------------------------------------------------ public
    def run(self, sql: str) -> JobReport:
        report = self.report
        remove = self.cancel.add_callback(self._stop.set)
        try:
            with ExitStack() as stack:
                stream, pushdown, columns = self._open(self._prepare(sql), stack)
                self._run_stream(stream, pushdown, columns)
        except (KeyboardInterrupt, Cancelled):
            report.fail(Cancelled.reason, "the export was interrupted")
        except ConfigError:
            raise
        except ConnectorError as exc:
            if self.cancel.cancelled:
                report.fail(Cancelled.reason, "the export was interrupted")
            else:
                report.fail(exc.reason, str(exc))
        finally:
            remove()
            report.finish()
        return report

    # ------------------------------------------------------------------ opening the stream
    def _prepare(self, sql: str) -> str:
        """The user's query, wrapped in the output mapping, then restricted to the shard (which
        hashes the mapped key)."""
        if not self.mapping.is_identity():
            mapped = compile_mapping(self.mapping, sql, self.source.column_names(sql),
                                     self.export_time)
            sql, self._renamed = mapped.sql, mapped.sources
        if self.shard is not None:
            assert self.plugin.shard_column is not None
            sql = shard_sql(sql, self.source.dialect, self.shard, self.plugin.shard_column)
        return sql

    def _warn(self, message: str) -> None:
        self.on_warning(self.report.warn(message))

    def _bind(self, names: list[str], types: list[str] | None = None) -> ColumnBinding:
        plugin = self.plugin
        return bind_columns(names, output=plugin.type, required=plugin.required_columns,
                            known=plugin.known_columns, types=types, warn=self._warn)

    def _open(self, sql: str, stack: ExitStack) -> tuple[Stream, Pushdown | None, ColumnBinding]:
        """The query's stream: Arrow batches with the output's SQL around it when the engine
        and the output support it, else rows."""
        described = self.source.describe(sql) if self.use_pushdown else None
        columns = None
        if described is not None:
            columns = self._bind([n for n, _ in described], [t for _, t in described])
            pushdown = self.plugin.pushdown(sql, self.source.dialect, columns)
            if pushdown is not None:
                try:
                    stream = stack.enter_context(self.source.stream_arrow(pushdown.sql))
                    return stream, pushdown, columns
                except SourceError as exc:
                    # A bug in the compiled SQL must not stop an export the rows can do.
                    self._warn(f"encoding rows in Python: the engine refused the compiled "
                               f"query ({exc})")
        stream = stack.enter_context(self.source.stream(sql))
        return stream, None, columns or self._bind(stream.columns)

    # ------------------------------------------------------------------ running
    def _run_stream(self, stream: Stream, pushdown: Pushdown | None,
                    columns: ColumnBinding) -> None:
        sink: Sink = (self.plugin.dry_run_sink(self.dry_run_path) if self.dry_run_path
                      else self.plugin.sink())
        sequencer = OutcomeSequencer(self.report)
        producer = threading.Thread(target=self._produce, args=(stream, pushdown, columns),
                                    name="connector-producer", daemon=True)
        try:
            sink.open(self.cancel, sequencer)
            producer.start()
            try:
                self._send_all(sink)
            except BaseException:
                sink.abort()
                raise
        finally:
            self._stop.set()
            if producer.is_alive():
                self._drain(producer, stream)
            sequencer.flush()
            self.report.spilled_batches = self._buffer.spilled_batches
            stats = sink.stats()
            self.report.peak_in_flight = stats.peak_in_flight
            self.report.concurrency_limit = stats.concurrency_limit
            self.report.concurrency_lowered = dict(stats.concurrency_lowered)
            self._buffer.close()
            sink.close()

    def _send_all(self, sink: Sink) -> None:
        sink.deliver(self._take)
        sink.commit()
        if sink.failure is not None:
            self.report.fail("send_failed", sink.failure)

    def _take(self) -> Batch | None:
        """The next batch for the sink (from any of its sender threads), None once there are no
        more; the producer's failure is raised here."""
        while True:
            try:
                item = self._buffer.get(timeout=0.1)
            except TimeoutError:
                self.cancel.raise_if_cancelled()
                continue
            if isinstance(item, Failure):
                raise item.exc
            return None if isinstance(item, _Done) else item

    def _drain(self, producer: threading.Thread, stream: Stream) -> None:
        """Stop the producer (it checks the stop flag); rows read but not sent end up `failed`."""
        producer.join(timeout=5)
        if producer.is_alive():  # blocked inside the engine's fetch: cancel the query under it
            stream.cancel()
            producer.join(timeout=5)

    # ------------------------------------------------------------------ the producer thread
    def _produce(self, stream: Stream, pushdown: Pushdown | None, columns: ColumnBinding) -> None:
        try:
            records = (self._encode_rows(stream, self.plugin.encoder(columns), columns)
                       if pushdown is None else self._encode_batches(stream, pushdown, columns))
            if self.plugin.ignore_invalid_records:
                self._hand_over(records)
            else:
                with tempfile.TemporaryFile(prefix="connector-spool-") as file:
                    count = spool(records, file)
                    if self._stop.is_set():
                        return
                    invalid = self.report.invalid_records
                    if invalid:
                        raise InvalidRecordsError(
                            f"{plural(invalid, 'invalid row')} and ignore_invalid_records is "
                            "false: nothing was sent")
                    file.seek(0)
                    self._hand_over(read_spool(file, count))
        except BaseException as exc:  # noqa: BLE001 - handed to the sender thread
            self._buffer.finish(Failure(exc))
        finally:
            self._buffer.finish(_Done())

    def _hand_over(self, records: Records) -> None:
        for batch in cut_batches(records, self.plugin.batch_size):
            handed = self._buffer.put(batch, self._stop)
            # Not held while the next one is built: at 100,000 events a batch is ~65 MB.
            batch = None  # type: ignore[assignment]
            if not handed:
                return

    def _invalid(self, columns: ColumnBinding) -> Callable[[int, InvalidRecord, Any], None]:
        """Reports an invalid row, with a sample of its value (masked unless visible)."""
        visible = self.plugin.visible_columns
        add = self.report.add_invalid

        renamed = self._renamed

        def invalid(row_no: int, err: InvalidRecord, row: Any) -> None:
            if err.value is not InvalidRecord.NOT_GIVEN:  # the value at a path in the column
                add(row_no, err.column, err.rule, err.reason, err.value, err.column in visible)
                return
            column = err.column.split(".", 1)[0]
            # Named as the output sees it, and as the query has it when the mapping renamed it.
            label = err.column if column not in renamed else f"{err.column} (from {renamed[column]})"
            add(row_no, label, err.rule, err.reason, columns.value(row, column),
                column in visible)

        return invalid

    def _encode_batches(self, stream: Stream, pushdown: Pushdown,
                        columns: ColumnBinding) -> Records:
        """As _encode_rows, from Arrow batches the engine encoded; the rows it left to the
        reference are converted to Python and encoded one by one."""
        report = self.report
        invalid = self._invalid(pushdown.columns)  # its rows hold only the output's columns
        refresh = pushdown.encoder.refresh_clock
        row_no = report.rows_read
        for batch in prefetch(stream.partitions, PREFETCH_BATCHES, self._stop):
            if self._stop.is_set():
                return
            refresh()
            records, invalid_rows = pushdown.encode_all(batch)
            for i, err, row in invalid_rows:
                invalid(row_no + i + 1, err, row)
            # The whole batch has left the engine before any of it is sent.
            report.read_up_to(row_no + len(records))
            for i, record in enumerate(records, row_no + 1):
                if record is not None:
                    yield i, record
            row_no += len(records)

    def _encode_rows(self, stream: Stream, encoder: RecordEncoder,
                     columns: ColumnBinding) -> Records:
        """(row number, encoded record) for valid rows; invalid rows go to the report."""
        report = self.report
        invalid = self._invalid(columns)
        encode = encoder.encode
        refresh = encoder.refresh_clock
        row_no = report.rows_read
        try:
            for partition in stream.partitions:
                if self._stop.is_set():
                    return
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
                    report.read_up_to(row_no)
                    yield row_no, record
                report.read_up_to(row_no)
        finally:
            # Also when the consumer stops early: a row counts as read once it left the engine.
            report.read_up_to(row_no)

