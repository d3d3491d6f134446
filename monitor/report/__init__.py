"""`monitor replay --html`: gather during the replay (`collect`), render one page (`html`)."""

from monitor.report.collect import ReplayCollector
from monitor.report.html import render, write_html

__all__ = ["ReplayCollector", "render", "write_html"]
