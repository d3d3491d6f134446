"""Configuration of the Kafka daemon: broker, topics, checkpoints, HTTP endpoints, metrics.

Security settings pass through to kafka-python unchanged; secrets can come from the
environment (``MONITOR__KAFKA__SASL_PLAIN_PASSWORD``) or a file (``file:/run/secrets/x``).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from monitor.config.base import Section, read_secret

EMBEDDED = "embedded"


def check_address(server: str) -> None:
    """`host`, `host:port` or `[v6]:port`, with a port in 1-65535 when given.

    >>> check_address("broker-1:9092"); check_address("[::1]:9092"); check_address("kafka")
    >>> check_address("127.0.0.1:notaport")
    Traceback (most recent call last):
    ValueError: '127.0.0.1:notaport': the port must be a number from 1 to 65535
    >>> check_address("PLAINTEXT://broker:9092")
    Traceback (most recent call last):
    ValueError: 'PLAINTEXT://broker:9092': expected host:port (no scheme, no spaces)
    >>> check_address("127.0.0.1:9092:x")
    Traceback (most recent call last):
    ValueError: '127.0.0.1:9092:x': expected host:port or [v6]:port
    """
    if not server or any(c.isspace() for c in server) or "://" in server:
        raise ValueError(f"{server!r}: expected host:port (no scheme, no spaces)")
    host, port = server, None
    if server.startswith("["):
        host, _, rest = server[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else (rest or None)
    elif server.count(":") == 1:
        host, port = server.split(":")
    elif ":" in server:  # several colons: only a bare IPv6 address (write [v6]:port)
        try:
            ipaddress.IPv6Address(server)
        except ValueError:
            raise ValueError(f"{server!r}: expected host:port or [v6]:port") from None
    if not host:
        raise ValueError(f"{server!r}: no host")
    if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"{server!r}: the port must be a number from 1 to 65535")


class KafkaConfig(Section):
    """Where events come from and where results go."""

    bootstrap_servers: str | list[str] = Field(
        EMBEDDED, description='"host:port[,host:port]", a list, or "embedded" (local Tansu)')
    topics: list[str] = Field(default_factory=lambda: ["events"],
                              description="input topics (ignored when `pattern` is set)")
    pattern: str | None = Field(None, description="subscribe to every topic whose name this "
                                "regex matches from its start, instead of `topics`")
    embedded_partitions: int = Field(1, gt=0, description="partitions of topics the embedded "
                                     "broker creates")
    group_id: str = "monitor"
    client_id: str = "monitor"
    scored_topic: str = "monitor.scored"
    dead_letter_topic: str = "monitor.dead-letter"
    changelog_topic: str | None = Field(
        None, description="compacted state changelog; default `<group_id>.changelog`")
    feedback_topic: str | None = Field(None, description="labelled events (analyst feedback)")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_plain_username: str | None = None
    sasl_plain_password: SecretStr | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_password: SecretStr | None = None
    ssl_check_hostname: bool = True
    session_timeout_ms: int = Field(10_000, ge=1000)
    heartbeat_interval_ms: int | None = Field(None, gt=0, description="default session / 3")
    max_poll_interval_ms: int = Field(300_000, gt=0)
    fetch_max_wait_ms: int = Field(100, ge=0)
    max_batch_events: int = Field(1024, gt=0, description="events per micro-batch (a full batch "
                                  "only under backlog; larger amortises per-call costs)")
    max_batch_wait_ms: int = Field(200, ge=0, description="longest wait to fill a batch")
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    start_deadline_s: float = Field(60.0, gt=0, description="give up if no broker by then")
    start_backoff_max_s: float = Field(5.0, gt=0, description="cap of the retry backoff")
    restore_timeout_s: float = Field(120.0, gt=0)
    producer_batch_bytes: int = Field(
        1 << 20, gt=0, description="producer batch per partition (kafka-python's 16 KiB "
        "default costs about twice as much per scored record)")
    producer_linger_ms: int = Field(5, ge=0, description="producer wait to fill a batch")
    max_snapshot_bytes: int = Field(
        16 << 20, gt=0, description="largest state snapshot (producer max_request_size and "
        "the changelog topic's max.message.bytes)")
    repartition: bool = Field(
        False, description="route events through the internal topic `<group_id>.by-segment`, "
        "keyed by segment, so each segment is learned once, by one scorer partition, instead "
        "of once per input partition; use it when the input is keyed by card, account or "
        "user (every input partition then sees every segment); off scores each input "
        "partition on its own, as before")
    repartition_partitions: int | None = Field(
        None, gt=0, description="partitions of the internal topic when it is created "
        "(default: as many as the largest input topic); one segment's traffic always lands "
        "on one of them")

    @field_validator("sasl_plain_password", "ssl_password", mode="before")
    @classmethod
    def _from_file(cls, value: Any) -> Any:
        return read_secret(value)  # a ValueError becomes a validation error with its path

    @model_validator(mode="after")
    def _topics_or_pattern(self) -> KafkaConfig:
        if not self.topics and self.pattern is None:
            raise ValueError("set kafka.topics or kafka.pattern")
        if self.repartition and self.by_segment_topic in self.topics:
            raise ValueError(f"kafka.topics lists the internal topic {self.by_segment_topic!r}:"
                             " with repartition the router writes it, the scorer reads it")
        if self.pattern is not None:
            try:
                regex = re.compile(self.pattern)
            except re.error as err:
                raise ValueError(f"kafka.pattern is not a valid regex: {err}") from None
            own = [self.scored_topic, self.dead_letter_topic, self.changelog,
                   self.feedback_topic, self.by_segment_topic if self.repartition else None]
            # the daemon would consume its own output (or the feedback as events)
            caught = [t for t in own if t is not None and regex.match(t)]
            if caught:
                raise ValueError(f"kafka.pattern {self.pattern!r} also matches {caught}: "
                                 "narrow it or rename those topics")
        return self

    @field_validator("bootstrap_servers")
    @classmethod
    def _addresses(cls, value: str | list[str]) -> str | list[str]:
        """Refuse a malformed address at start-up instead of retrying it as unreachable."""
        if value == EMBEDDED:
            return value
        servers = value.split(",") if isinstance(value, str) else value
        for server in servers:
            check_address(server.strip())
        return value

    @property
    def embedded(self) -> bool:
        return self.bootstrap_servers == EMBEDDED

    @property
    def changelog(self) -> str:
        return self.changelog_topic or f"{self.group_id}.changelog"

    @property
    def by_segment_topic(self) -> str:
        """The internal repartition topic (`repartition: true`)."""
        return f"{self.group_id}.by-segment"

    @property
    def router_group(self) -> str:
        """The router's own consumer group: it commits input offsets, the scorers commit
        the internal topic's."""
        return f"{self.group_id}.router"

    def client_options(self, bootstrap: str | list[str]) -> dict[str, Any]:
        """Connection and security options shared by consumers, producers and admins."""
        opts: dict[str, Any] = {"bootstrap_servers": bootstrap, "client_id": self.client_id,
                                "security_protocol": self.security_protocol}
        if self.sasl_mechanism is not None:
            opts["sasl_mechanism"] = self.sasl_mechanism
            opts["sasl_plain_username"] = self.sasl_plain_username
            if self.sasl_plain_password is not None:
                opts["sasl_plain_password"] = self.sasl_plain_password.get_secret_value()
        if self.security_protocol in ("SSL", "SASL_SSL"):
            opts.update(ssl_cafile=self.ssl_cafile, ssl_certfile=self.ssl_certfile,
                        ssl_keyfile=self.ssl_keyfile, ssl_check_hostname=self.ssl_check_hostname)
            if self.ssl_password is not None:
                opts["ssl_password"] = self.ssl_password.get_secret_value()
        return opts


class CheckpointConfig(Section):
    """When state becomes durable and offsets are committed."""

    every_events: int = Field(5_000, gt=0)
    every_seconds: float = Field(10.0, gt=0)
    on_idle: bool = Field(True, description="also checkpoint when a poll comes back empty "
                          "(caught up), so an idle daemon has nothing left to replay")
    state_dir: str | None = Field(None, description="local snapshots; default: none kept")
    seed_file: str | None = Field(
        None, description="reference seed written by `monitor fit`: a partition without "
        "restored state starts from its encoder state, and a segment without state of its "
        "own from its fitted state instead of warming up (read once at start-up; a file "
        "fitted with other fields/embed/score settings is refused)")
    shutdown_timeout_s: float = Field(30.0, gt=0)


class HttpConfig(Section):
    """The daemon's HTTP endpoints: /metrics, /healthz, /readyz, /status and the page at /."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(9108, ge=0, le=65535, description="0 picks a free port")
    stale_after_s: float = Field(30.0, gt=0, description="/healthz fails if the loop is idle "
                                 "longer than this")
    timeout_s: float = Field(10.0, gt=0, description="per-connection read and write "
                             "timeout: a slow or vanished client is dropped after it")
    max_connections: int = Field(32, gt=0, description="connections served at once; "
                                 "past it a quick 503")


class MetricsConfig(Section):
    """Prometheus exposition (served by the HTTP server, see `http`)."""

    segment_cap: int = Field(20, ge=2, description="segment label values at most; the "
                             "busiest keep their names, the rest become \"other\"")
