"""A real Kafka-protocol broker (Tansu, memory storage, 127.0.0.1) shared by the daemon tests;
each test uses its own topics and consumer group."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from monitor.source.embedded import EmbeddedBroker


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b
