"""The compacted changelog topic: one snapshot record per checkpoint and input partition.

Records are keyed ``"<topic>:<partition>"`` and land in changelog partition
``partition % changelog_partitions`` (created with the source's partition count), so a
restore reads one small partition. Restore reads from the beginning until a poll comes back
empty, and never trusts `end_offsets()` alone: some brokers (Tansu) answer it with the base
offset of the last record batch + 1, too small when that batch holds several records.
Each record's header `monitor.snapshot.offset` says which input offset the snapshot is at,
so a restore decodes only the snapshot it keeps, however many older ones the topic still
holds (a record without the header, from an older release, is decoded to learn it).
Each restore leaves what it read and where its time went in `last_restore`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.producer.future import FutureRecordMetadata

from monitor.errors import DecodeError, TransientError
from monitor.state.snapshot import Snapshot, snapshot_key

log = logging.getLogger(__name__)

_EMPTY_POLLS = 2  # consecutive empty polls that mean "read to the end"
_END_POLL_MS = 100  # their length, once the end offsets' lower bound is reached
H_OFFSET = "monitor.snapshot.offset"


def header_offset(headers: Any) -> int | None:
    """The snapshot's input offset from its record headers; None when absent or bad.

    >>> header_offset([("monitor.snapshot.offset", b"1200")]), header_offset([])
    (1200, None)
    """
    for name, value in headers or ():
        if name == H_OFFSET and value is not None:
            try:
                return int(value)
            except ValueError:
                return None
    return None


@dataclass(frozen=True, slots=True)
class RestoreStats:
    """One `Changelog.restore`: records and value bytes read, snapshots decoded, and its
    seconds: `read_s` polling (to the end, decoding excluded), `end_wait_s` the part of
    it after the last record arrived (the empty polls that mark the end), `decode_s`
    decoding snapshots, `total_s` the whole call."""

    records: int
    value_bytes: int
    decodes: int
    read_s: float
    end_wait_s: float
    decode_s: float
    total_s: float


class Changelog:
    """Writes snapshots through the shared producer and restores them with its own consumer."""

    def __init__(self, producer: KafkaProducer, topic: str, partitions: int,
                 client: Mapping[str, Any], poll_ms: int = 300) -> None:
        self.producer = producer
        self.topic = topic
        self.partitions = partitions
        self.client = dict(client)
        self.poll_ms = poll_ms
        self._reader: KafkaConsumer | None = None
        self.last_restore: RestoreStats | None = None

    def partition_for(self, source_partition: int) -> int:
        return source_partition % self.partitions

    def send(self, snap: Snapshot, data: bytes) -> FutureRecordMetadata:
        return self.producer.send(self.topic, key=snap.key, value=data,
                                  partition=self.partition_for(snap.partition),
                                  headers=[(H_OFFSET, str(snap.offset).encode())])

    def _consumer(self) -> KafkaConsumer:
        if self._reader is None:
            self._reader = KafkaConsumer(group_id=None, enable_auto_commit=False,
                                         auto_offset_reset="earliest",
                                         fetch_max_wait_ms=50, **self.client)
        return self._reader

    def restore(self, wanted: Mapping[tuple[str, int], int | None],
                timeout_s: float = 120.0) -> dict[tuple[str, int], Snapshot]:
        """Newest snapshot per `(topic, partition)` whose offset is at most the committed
        offset given for it (a snapshot written by a checkpoint that crashed before its
        commit is newer than the commit and must not be used)."""
        keys = {snapshot_key(t, p): (t, p) for (t, p), c in wanted.items() if c is not None}
        if not keys:
            return {}
        start = time.perf_counter()
        reader = self._consumer()
        tps = sorted({TopicPartition(self.topic, self.partition_for(p)) for _, p in keys.values()})
        reader.assign(tps)
        for tp in tps:
            reader.seek_to_beginning(tp)
        floor = reader.end_offsets(tps)  # a lower bound only (see module doc)
        # per partition: the newest snapshot at or below its commit, as (offset, bytes)
        best: dict[tuple[str, int], tuple[int, bytes]] = {}
        deadline = time.monotonic() + timeout_s
        empty = 0
        read = nbytes = decodes = 0
        decode_s = 0.0
        last_data = time.perf_counter()
        while True:
            short = all(reader.position(tp) >= floor[tp] for tp in tps)
            if short and empty >= _EMPTY_POLLS:
                break
            if time.monotonic() > deadline:
                raise TransientError(f"changelog {self.topic}: restore timed out")
            batch = reader.poll(timeout_ms=_END_POLL_MS if short else self.poll_ms)
            empty = 0 if batch else empty + 1
            for records in batch.values():
                for rec in records:
                    read += 1
                    nbytes += len(rec.value or b"")
                    which = keys.get(rec.key) if rec.key is not None else None
                    if which is None or rec.value is None:
                        continue
                    offset = header_offset(rec.headers)
                    if offset is None:  # written before the header: decode to learn it
                        t = time.perf_counter()
                        try:
                            offset = Snapshot.decode(rec.value).offset
                        except DecodeError as err:
                            log.warning("changelog %s@%d: %s", self.topic, rec.offset,
                                        err.reason)
                            continue
                        finally:
                            decode_s += time.perf_counter() - t
                            decodes += 1
                    committed = wanted[which]
                    newer = which not in best or offset >= best[which][0]
                    if committed is not None and offset <= committed and newer:
                        best[which] = (offset, rec.value)
            if batch:
                last_data = time.perf_counter()
        reader.assign([])
        polled = time.perf_counter()
        read_s = polled - start - decode_s
        found = {}
        for which, (_, data) in best.items():
            try:
                found[which] = Snapshot.decode(data)
            except DecodeError as err:  # the newest is unreadable: say so, start without it
                log.warning("changelog %s: snapshot of %s:%d: %s", self.topic, *which,
                            err.reason)
        done = time.perf_counter()
        decode_s += done - polled
        self.last_restore = RestoreStats(read, nbytes, decodes + len(best), read_s,
                                         polled - last_data, decode_s, done - start)
        log.info("changelog %s: read %d records (%d bytes) in %.2f s, decoded in %.2f s, "
                 "restored %d of %d partitions", self.topic, read, nbytes, read_s, decode_s,
                 len(best), len(keys))
        return found

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close(autocommit=False)
            self._reader = None
