"""Issue 13, must-show 1 and 2: with `kafka.repartition`, a card-keyed input of 3
partitions and 6 segments is learned once per segment, each segment in one partition
state, and a drift in one segment raises one alarm, at least as early as without
repartition on the same stream (both printed side by side)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from alerts_helpers import Receiver
from daemon_helpers import (
    DaemonProcess,
    free_port,
    new_topic,
    read_all,
    unique,
    wait_until,
    write_config,
)
from repartition_helpers import (
    DRIFTING,
    FIELDS,
    SEGMENTS,
    Stream,
    alarms,
    delays,
    internal_order,
    make_stream,
    produce_keyed,
    segment_homes,
    warmups,
)

from monitor.source.embedded import EmbeddedBroker

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

WARMUP = 256  # a multiple of score.learn_block (64): the first fit lands on it
PER_SEGMENT = 1000
DRIFT_AT = 700


def _config(tmp: Path, bootstrap: str, topic: str, group: str, port: int, repartition: bool,
            name: str, hook: str) -> Path:
    return write_config(tmp / f"{name}.yaml", bootstrap, topic, group, http_port=port,
                        fields=FIELDS, score={"warmup": WARMUP},
                        kafka={"repartition": repartition, "scored_topic": f"{group}.scored",
                               "max_batch_events": 200},
                        alerts={"receivers": [{"name": "hook", "url": hook}],
                                "group_wait_seconds": 0, "group_interval_seconds": 0.5,
                                "poll_interval_seconds": 0.05})


def _drift_notifications(receiver: Receiver) -> list[dict[str, Any]]:
    """Firing drift alerts delivered to the webhook."""
    with receiver.lock:
        docs = list(receiver.accepted)
    return [a for doc in docs for a in doc["alerts"]
            if a["kind"] == "drift" and a["status"] == "firing"]


def _scored_count(bootstrap: str, topic: str) -> int:
    return len(read_all(bootstrap, topic, 3, quiet_polls=1))


def _run(tmp: Path, bootstrap: str, topic: str, n: int, repartition: bool, daemons: int,
         name: str, receiver: Receiver, feed: Callable[[], object] = lambda: None
         ) -> tuple[str, list[str], list[str]]:
    """Start `daemons` daemons on a fresh group, `feed()` once they are ready, wait until
    all `n` events are scored and a drift notification delivered, stop them; returns the
    group, the daemons' logs and their /metrics pages at the end."""
    group = unique(f"g-{name}")
    procs = []
    for i in range(daemons):
        port = free_port()
        cfg = _config(tmp, bootstrap, topic, group, port, repartition, f"{name}{i}",
                      receiver.url)
        procs.append(DaemonProcess(cfg, tmp / f"{name}{i}.log", port).start())
    try:
        for d in procs:
            d.wait_ready(90)
        feed()
        wait_until(lambda: _scored_count(bootstrap, f"{group}.scored") >= n, 240,
                   f"{n} events scored ({name})", every_s=2)
        if repartition:  # (without, printed only: how many partitions alarm varies)
            wait_until(lambda: _drift_notifications(receiver), 30, "a drift notification")
        time.sleep(2)  # room for another one to arrive, were there one
        pages = [d.get("/metrics")[1] for d in procs]
    finally:
        codes = [d.stop() for d in procs]
    assert codes == [0] * daemons, [d.output()[-3000:] for d in procs]
    return group, [d.output() for d in procs], pages


def _consumed(pages: list[str]) -> dict[str, float]:
    """monitor_events_consumed_total summed per topic label over the daemons."""
    out: dict[str, float] = {}
    for page in pages:
        for m in re.finditer(r'^monitor_events_consumed_total\{(.*?)\} (\S+)$', page, re.M):
            topic = re.search(r'topic="([^"]*)"', m[1])
            assert topic is not None
            out[topic[1]] = out.get(topic[1], 0.0) + float(m[2])
    return out


def _summed(pages: list[str], name: str, topic: str) -> float:
    """One series summed over the daemons' pages and the topic's partitions."""
    pattern = rf'^{name}\{{[^}}]*topic="{re.escape(topic)}"[^}}]*\}} (\S+)$'
    return sum(float(m[1]) for page in pages for m in re.finditer(pattern, page, re.M))


def test_repartition_learns_each_segment_once_and_alarms_once(
        broker: EmbeddedBroker, tmp_path: Path) -> None:
    bootstrap = broker.bootstrap
    topic = new_topic(bootstrap, 3)
    rows = make_stream(PER_SEGMENT, DRIFT_AT)
    n = len(rows)
    fed: list[Stream] = []

    def feed() -> None:  # live, about 1,200 events/s, while both daemons run
        fed.append(produce_keyed(bootstrap, topic, rows, DRIFT_AT, chunk=60, pause_s=0.05))

    hooks = Receiver().start(), Receiver().start()
    try:
        group, logs, pages = _run(tmp_path, bootstrap, topic, n, True, 2, "rep", hooks[0],
                                  feed)
        # the plain run reads the same topic as a backlog: per-partition detectors each
        # read their own partition in order, the same streams a live run gives them
        plain, plain_logs, _ = _run(tmp_path, bootstrap, topic, n, False, 1, "plain",
                                    hooks[1])
    finally:
        for hook in hooks:
            hook.stop()
    rep_notified, plain_notified = (len(_drift_notifications(h)) for h in hooks)
    notice = _drift_notifications(hooks[0])[0]
    stream = fed[0]
    assert sorted(stream.by_partition) == [0, 1, 2]
    rep_warm = warmups(bootstrap, f"{group}.scored")
    rep_alarms = alarms(logs)
    order, dups = internal_order(bootstrap, f"{group}.by-segment")
    rep_delay = delays(rep_alarms, order, stream)
    homes = segment_homes(bootstrap, f"{group}.changelog")
    scored = read_all(bootstrap, f"{group}.scored", 3)
    rows: list[dict[str, Any]] = [orjson.loads(r.value) for r in scored]

    plain_warm = warmups(bootstrap, f"{plain}.scored")
    plain_alarms = alarms(plain_logs)
    plain_delay = delays(plain_alarms, stream.by_partition, stream)

    print(f"\n{'segment':>8} {'warm-up (repartition)':>22} {'warm-up (per partition)':>24}")
    for s in SEGMENTS:
        print(f"{s:>8} {rep_warm[s]:>22} {plain_warm[s]:>24}")
    print(f"drift in {DRIFTING} at its event {DRIFT_AT}: alarms with repartition "
          f"{len(rep_alarms)}, delays {rep_delay} segment events; without "
          f"{len(plain_alarms)}, delays {plain_delay}")
    print(f"segment homes (internal partition): {homes}; router duplicates: {dups}")
    print(f"alarms: {rep_alarms} / {plain_alarms}")
    print(f"drift notifications delivered: {rep_notified} with repartition, "
          f"{plain_notified} without")

    # each event scored once, naming its source record, not the internal one
    assert len(rows) == n
    assert {r["topic"] for r in rows} == {topic}
    assert sorted((r["partition"], r["offset"]) for r in rows) == sorted(
        (p, o) for p, ids in stream.by_partition.items() for o in range(len(ids)))
    assert _consumed(pages) == {topic: n}  # metrics count source records, once
    assert rep_warm == dict.fromkeys(SEGMENTS, WARMUP)
    assert all(plain_warm[s] > WARMUP for s in SEGMENTS)  # learned once per partition
    assert sorted(homes) == sorted(SEGMENTS)
    assert all(len(parts) == 1 for parts in homes.values()), homes
    assert [a[2] for a in rep_alarms] == [DRIFTING], rep_alarms
    assert rep_notified == 1
    # the drift alert names the input and the segment, not the internal partition, and
    # says which source record the detector alarmed at and where the model lives
    assert notice["labels"] == {"topic": topic, "segment": DRIFTING}, notice["labels"]
    assert notice["details"]["source"]["topic"] == topic
    assert notice["details"]["source"]["partition"] in (0, 1, 2)
    assert notice["details"]["model"]["topic"] == f"{group}.by-segment"
    # the router's own series: every input record forwarded once, the input's lag
    assert _summed(pages, "monitor_router_forwarded_total", topic) == n
    assert _summed(pages, "monitor_router_lag_records", topic) == 0
    assert rep_delay and rep_delay[0] >= 0
    assert not plain_delay or rep_delay[0] <= plain_delay[0]
