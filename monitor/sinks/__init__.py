"""Sinks: the edges where results leave the monitor (metrics, topics, alert webhooks)."""
