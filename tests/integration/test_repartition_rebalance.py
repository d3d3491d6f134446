"""Issue 13, must-show 4: a second repartitioning daemon joins mid-stream. The segment
states it takes over arrive through the changelog (not re-learned: every segment still
warms up exactly once), and no record is scored by two replicas (each source offset is
scored exactly once, so no segment was scored in two places at once)."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from daemon_helpers import (
    DaemonProcess,
    committed,
    free_port,
    new_topic,
    read_all,
    unique,
    wait_until,
    write_config,
)
from repartition_helpers import FIELDS, SEGMENTS, make_stream, produce_keyed, warmups

from monitor.source.embedded import EmbeddedBroker

pytestmark = [
    pytest.mark.slow, pytest.mark.timeout(400),
]

PARTS = 3
WARMUP = 256
MOVED = re.compile(r"(\S+):(\d+) restored at offset (\d+) \(changelog\)")


def test_second_daemon_joins_and_takes_segment_states_from_the_changelog(
        broker: EmbeddedBroker, tmp_path: Path) -> None:
    bootstrap = broker.bootstrap
    topic, group = new_topic(bootstrap, PARTS), unique("g-join")
    internal = f"{group}.by-segment"
    rows = make_stream(1500, 1000)
    procs = []
    for name in ("a", "b"):
        port = free_port()
        cfg = write_config(tmp_path / f"{name}.yaml", bootstrap, topic, group, http_port=port,
                           state_dir=tmp_path / f"state-{name}", fields=FIELDS,
                           score={"warmup": WARMUP}, checkpoint={"on_idle": False},
                           kafka={"repartition": True, "scored_topic": f"{group}.scored",
                                  "max_batch_events": 50})
        procs.append(DaemonProcess(cfg, tmp_path / f"{name}.log", port))
    first, second = procs
    fed: list[Any] = []
    feeder = threading.Thread(target=lambda: fed.append(produce_keyed(
        bootstrap, topic, rows, 1000, chunk=30, pause_s=0.1)))
    try:
        first.start().wait_ready(90)
        feeder.start()
        wait_until(lambda: sum(v or 0 for v in committed(
            bootstrap, group, internal, PARTS).values()) >= 1500, 90,
            "the first daemon checkpointed its segment states")
        second.start().wait_ready(90)
        assert feeder.is_alive(), "the second daemon should join while events still arrive"
        feeder.join(timeout=120)
        everything = {(p, o) for p, ids in fed[0].by_partition.items()
                      for o in range(len(ids))}

        def scored() -> list[tuple[int, int]]:
            return [(row["partition"], row["offset"]) for row in
                    (orjson.loads(r.value) for r in read_all(
                        bootstrap, f"{group}.scored", PARTS, quiet_polls=1))]

        wait_until(lambda: set(scored()) >= everything, 180, "every input offset scored",
                   every_s=2)
    finally:
        codes = [second.stop(), first.stop()]
        feeder.join(timeout=120)
    assert codes == [0, 0], first.output()[-3000:] + second.output()[-3000:]
    moved = [(t, int(p), int(o)) for t, p, o in MOVED.findall(second.output())
             if t == internal]
    final = scored()
    warm = warmups(bootstrap, f"{group}.scored")
    print(f"\nmoved to the second daemon through the changelog: {moved}; "
          f"scored {len(final)} of {len(everything)}; warm-ups {warm}")
    assert moved and all(offset > 0 for _, _, offset in moved)
    assert len(final) == len(set(final)) == len(everything)  # nothing scored twice
    assert warm == dict.fromkeys(SEGMENTS, WARMUP)  # moved states were not re-learned
