"""Repartition by segment (`kafka.repartition: true`).

Input topics are usually keyed by card, account or user, so every input partition sees
every segment, and scoring each input partition on its own learns each segment once per
partition from a fraction of its traffic. The *router* (`router.py`) re-keys the original
bytes by segment onto the internal topic `<group_id>.by-segment`; the *scorer* is the
ordinary daemon reading that topic, so each segment's model lives in one partition state.
The headers (`origin.py`) carry where each record came from, so outputs name the source
record and router duplicates are recognised (`dedupe.py`).
"""
