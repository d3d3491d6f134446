"""Fingerprints, grouping, deduplication, repeat interval and rate limit, per receiver.

The router holds alerts in memory between sends; it never touches the network or disk.
Two kinds of alert behave differently:

- state alerts (drift, operational) are deduplicated by fingerprint: repeating the same
  status is no news; a status change is; a still-firing alert is re-sent every
  `repeat_interval_seconds`;
- event alerts (`aggregate_kinds`, outliers by default) add their counts and keep the worst
  examples; every notification carries the count since the previous one, so counts over all
  notifications add up to the events submitted.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from monitor.config import AlertsConfig
from monitor.events import Alert
from monitor.sinks.alerts.ratelimit import TokenBucket
from monitor.sinks.alerts.redact import redact

log = logging.getLogger(__name__)


def fingerprint(alert: Alert) -> str:
    """Stable identity of an alert: its kind and labels, order-independent.

    >>> a = Alert("drift", "firing", {"segment": "s1", "detector": "sr"})
    >>> b = Alert("drift", "resolved", {"detector": "sr", "segment": "s1"})
    >>> fingerprint(a) == fingerprint(b)
    True
    """
    raw = json.dumps([alert.kind, sorted(alert.labels.items())], separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _rank(details: dict[str, Any], key: str) -> float:
    value = details.get(key, details.get("score", 0.0))
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


@dataclass(slots=True)
class Tracked:
    """One fingerprint inside a group, as the receiver last heard of it and since."""

    fingerprint: str
    kind: str
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    details: dict[str, Any]
    starts_at: float
    ends_at: float | None
    new_count: int = 0
    total_count: int = 0
    examples: list[tuple[float, int, dict[str, Any]]] = field(default_factory=list)
    notified: str | None = None
    notified_at: float | None = None
    changed: bool = True


@dataclass(slots=True)
class Group:
    """Alerts sharing the group-by labels; notified together."""

    key: str
    labels: dict[str, str]
    created_at: float
    alerts: dict[str, Tracked] = field(default_factory=dict)
    last_sent: float | None = None
    overflow: int = 0


@dataclass(frozen=True, slots=True)
class Notification:
    """What one send to one receiver carries; `alerts` are JSON-ready dicts."""

    receiver: str
    group_key: str
    group_labels: dict[str, str]
    sequence: int
    created_at: float
    status: str
    count: int
    truncated_count: int
    alerts: tuple[dict[str, Any], ...]


class AlertRouter:
    """Groups, deduplicates and rate-limits alerts for one receiver; see the module doc."""

    def __init__(self, receiver: str, config: AlertsConfig, limiter: TokenBucket) -> None:
        self.receiver = receiver
        self.config = config
        self.limiter = limiter
        self.groups: dict[str, Group] = {}
        self.dropped = 0
        self.sequence = 0  # per receiver, never reused: receivers can order and dedup by it
        self._allow = frozenset(config.allow_fields)
        self._tiebreak = itertools.count()

    def _group_labels(self, alert: Alert) -> dict[str, str]:
        return {
            name: alert.kind if name == "kind" else alert.labels.get(name, "")
            for name in self.config.group_by
        }

    def status(self, alert: Alert) -> str | None:
        """The status this router holds for `alert`'s fingerprint (sent or about to be),
        None when it holds none: a resolve went out, or it never fired here."""
        group = self.groups.get(fingerprint(Alert("group", "", self._group_labels(alert))))
        tracked = group.alerts.get(fingerprint(alert)) if group is not None else None
        return tracked.status if tracked is not None else None

    def submit(self, alert: Alert, now: float) -> None:
        """Take one alert into its group; nothing is sent until `due()` says so."""
        cfg = self.config
        labels = self._group_labels(alert)
        key = fingerprint(Alert("group", "", labels))
        group = self.groups.get(key)
        if group is None:
            if len(self.groups) >= cfg.max_groups:
                self.dropped += alert.count
                log.warning(
                    "alerts receiver %s: group cap %d reached, alert dropped",
                    self.receiver,
                    cfg.max_groups,
                )
                return
            group = self.groups[key] = Group(key, labels, now)
        fp = fingerprint(alert)
        tracked = group.alerts.get(fp)
        if tracked is None:
            if len(group.alerts) >= cfg.max_alerts_per_group:
                group.overflow += alert.count
                return
            tracked = group.alerts[fp] = Tracked(
                fp,
                alert.kind,
                alert.status,
                dict(alert.labels),
                {},
                {},
                alert.starts_at or now,
                alert.ends_at,
            )
            if alert.status == "resolved":
                # A resolve we hold no state for (e.g. the firing was sent before a crash
                # that lost the router state): forward it, a stale firing is worse.
                tracked.notified = "firing"
        elif tracked.status != alert.status:
            tracked.status = alert.status
            tracked.changed = True
            if alert.status == "firing":
                tracked.starts_at = alert.starts_at or now
                tracked.ends_at = None
        elif alert.kind in cfg.aggregate_kinds:
            tracked.changed = True
        if alert.status == "resolved":
            tracked.ends_at = alert.ends_at or now
        tracked.annotations = dict(alert.annotations)
        tracked.details = redact(alert.details, self._allow)
        tracked.new_count += alert.count
        tracked.total_count += alert.count
        if alert.kind in cfg.aggregate_kinds and cfg.max_examples > 0:
            item = (_rank(alert.details, cfg.rank_by), next(self._tiebreak), tracked.details)
            if len(tracked.examples) < cfg.max_examples:
                heapq.heappush(tracked.examples, item)
            else:
                heapq.heappushpop(tracked.examples, item)

    def drop(self, labels: dict[str, str]) -> None:
        """Forget every alert whose labels include `labels`, without a notification."""
        items = labels.items()
        for group in self.groups.values():
            for fp in [fp for fp, t in group.alerts.items() if items <= t.labels.items()]:
                del group.alerts[fp]

    def _repeat_due(self, t: Tracked, now: float) -> bool:
        return (
            t.status == "firing"
            and t.notified_at is not None
            and now >= t.notified_at + self.config.repeat_interval_seconds
        )

    def _ready(self, group: Group, now: float, force: bool) -> bool:
        news = group.overflow > 0 or any(t.changed for t in group.alerts.values())
        if force:
            return news
        if group.last_sent is None:
            return news and now >= group.created_at + self.config.group_wait_seconds
        if news and now >= group.last_sent + self.config.group_interval_seconds:
            return True
        return any(self._repeat_due(t, now) for t in group.alerts.values())

    def due(self, now: float, *, force: bool = False) -> list[Notification]:
        """Notifications whose time has come and that the rate limit lets through.

        `force` ignores the group timers (shutdown, flush) but never the rate limit.
        """
        out: list[Notification] = []
        for key in list(self.groups):
            group = self.groups[key]
            if not group.alerts and group.overflow == 0:
                # An emptied group is kept one interval, so a storm that goes on after a
                # send waits for group_interval rather than a fresh group_wait.
                interval = self.config.group_interval_seconds
                if group.last_sent is None or now >= group.last_sent + interval:
                    del self.groups[key]
                continue
            if not self._ready(group, now, force) or not self.limiter.available(now):
                continue
            note = self._emit(group, now)
            if note is not None:
                self.limiter.try_take(now)
                out.append(note)
            del self.groups[key]
            self.groups[key] = group  # to the back of the queue: fair under the limit
        return out

    def _emit(self, group: Group, now: float) -> Notification | None:
        picked: list[Tracked] = []
        for fp, t in list(group.alerts.items()):
            if t.status == "resolved" and t.notified is None:
                del group.alerts[fp]  # fired and resolved before anyone heard: nothing to say
                continue
            if t.changed or self._repeat_due(t, now):
                picked.append(t)
        if not picked and group.overflow == 0:
            return None
        self.sequence += 1
        group.last_sent = now
        alerts = tuple(self._alert_dict(t, now) for t in picked)
        count = sum(t.new_count for t in picked) + group.overflow
        truncated, group.overflow = group.overflow, 0
        for t in picked:
            t.notified, t.notified_at, t.changed = t.status, now, False
            t.new_count = 0
            t.examples = []
            if t.status == "resolved" or t.kind in self.config.aggregate_kinds:
                group.alerts.pop(t.fingerprint, None)
        status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
        return Notification(
            self.receiver,
            group.key,
            dict(group.labels),
            self.sequence,
            now,
            status,
            count,
            truncated,
            alerts,
        )

    def _alert_dict(self, t: Tracked, now: float) -> dict[str, Any]:
        worst = [details for _, _, details in sorted(t.examples, reverse=True)]
        return {
            "fingerprint": t.fingerprint,
            "kind": t.kind,
            "status": t.status,
            "labels": t.labels,
            "annotations": t.annotations,
            "starts_at": t.starts_at,
            "ends_at": t.ends_at,
            "count": t.new_count,
            "total_count": t.total_count,
            "repeat": not t.changed,
            "details": t.details,
            "examples": worst,
        }

    def state_dict(self) -> dict[str, Any]:
        """JSON-ready state, so a restart keeps what was gathered but not yet sent."""
        return {
            "groups": [asdict(g) for g in self.groups.values()],
            "limiter": self.limiter.state_dict(),
            "dropped": self.dropped,
            "sequence": self.sequence,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.groups = {}
        for raw in state["groups"]:
            alerts = {
                fp: Tracked(**{**t, "examples": [tuple(e) for e in t["examples"]]})
                for fp, t in raw.pop("alerts").items()
            }
            group = Group(**raw, alerts=alerts)
            self.groups[group.key] = group
        ties = [e[1] for g in self.groups.values() for t in g.alerts.values() for e in t.examples]
        self._tiebreak = itertools.count(max(ties, default=-1) + 1)  # never compare dicts
        self.limiter.load_state_dict(state["limiter"])
        self.dropped = int(state["dropped"])
        self.sequence = int(state["sequence"])
