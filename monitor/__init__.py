"""monitor: a streaming drift and fraud monitor.

Events flow source -> decode -> embed -> score -> drift -> sinks; see README.md.
"""

__version__ = "0.1.0"
