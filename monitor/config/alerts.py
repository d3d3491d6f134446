"""Alert routing and delivery configuration: frozen, typed, unknown keys rejected.

The timing keys follow Alertmanager's meaning on purpose (group_wait, group_interval,
repeat_interval), so operators who already run Alertmanager read them the same way.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from monitor.config.base import Section

Kind = Literal["drift", "outlier", "operational"]
ALL_KINDS: tuple[Kind, ...] = ("drift", "outlier", "operational")


class ReceiverConfig(Section):
    """One named destination for notifications.

    A secret is taken from `secret` (literal; ``file:/path`` works through the main config
    loader), else from the environment variable named by `secret_env`, else from the file
    `secret_file`. Without one the receiver gets unsigned requests and a warning is logged.
    """

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    type: Literal["webhook", "slack", "alertmanager"] = "webhook"
    url: str = Field(pattern=r"^https?://")
    kinds: tuple[Kind, ...] = ALL_KINDS
    secret: str | None = None
    secret_env: str | None = None
    secret_file: str | None = None
    verify_tls: bool = True
    ca_file: str | None = None
    timeout_seconds: float = Field(10.0, gt=0, le=300)
    headers: dict[str, str] = Field(default_factory=dict)
    rate_limit: int = Field(
        20, gt=0, description="notifications at most per rate_limit_window_seconds"
    )
    rate_limit_window_seconds: float = Field(60.0, gt=0)


class AlertsConfig(Section):
    """Grouping, deduplication, rate limiting and the durable outbox's retry policy."""

    receivers: tuple[ReceiverConfig, ...] = ()
    group_by: tuple[str, ...] = Field(
        ("kind", "segment"), description='label names forming a group; "kind" is the alert kind'
    )
    aggregate_kinds: tuple[Kind, ...] = Field(
        ("outlier",), description="kinds whose repeated events add counts instead of deduping"
    )
    group_wait_seconds: float = Field(10.0, ge=0, description="gather before a group's first send")
    group_interval_seconds: float = Field(60.0, gt=0, description="min gap between group updates")
    repeat_interval_seconds: float = Field(4 * 3600.0, gt=0, description="re-send still firing")
    max_examples: int = Field(5, ge=0, description="worst examples carried per notification")
    rank_by: str = Field("risk", description="details key ranking the worst examples")
    max_alerts_per_group: int = Field(200, gt=0, description="distinct fingerprints per group")
    max_groups: int = Field(10_000, gt=0)
    allow_fields: tuple[str, ...] = Field(
        (), description="event fields allowed into payloads; none by default (no PII)"
    )
    dead_letter_rate: float = Field(
        0.01, gt=0, le=1, description="operational alert when a topic's dead-letter share "
        "over the window reaches this; resolved below half of it"
    )
    dead_letter_min_records: int = Field(
        500, gt=0, description="the share is taken over at least this many records, so "
        "fewer than rate x min_records dead letters never fire"
    )
    dead_letter_window_seconds: float = Field(
        300.0, gt=0, description="sliding window of the dead-letter share"
    )
    state_file: str = Field("alerts.sqlite", description="outbox file inside the state dir")
    max_age_seconds: float = Field(24 * 3600.0, gt=0, description="pending older -> expired")
    backoff_initial_seconds: float = Field(1.0, gt=0)
    backoff_max_seconds: float = Field(300.0, gt=0)
    backoff_multiplier: float = Field(2.0, ge=1)
    jitter: float = Field(0.2, ge=0, le=1, description="share of each delay drawn at random")
    batch: int = Field(50, gt=0, description="deliveries per receiver per pump")
    poll_interval_seconds: float = Field(0.2, gt=0, le=10)
    retention_seconds: float = Field(7 * 86400.0, ge=0, description="keep finished rows")

    @model_validator(mode="after")
    def _check(self) -> AlertsConfig:
        names = [r.name for r in self.receivers]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"receiver names must be unique: {', '.join(dup)}")
        if self.backoff_max_seconds < self.backoff_initial_seconds:
            raise ValueError("backoff_max_seconds must be >= backoff_initial_seconds")
        return self
