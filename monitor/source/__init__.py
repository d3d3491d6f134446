"""Sources: where raw events come from (files and stdin for replay, Kafka for the daemon)."""
