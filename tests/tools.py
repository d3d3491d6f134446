"""External tools the suite drives (promtool, Prometheus, Alertmanager, systemd-analyze,
openssl, headless Chromium for the HTML report).

`make test` installs them when it runs as root and then sets MONITOR_REQUIRE_TOOLS=1: a
missing tool is then a failure, not a skip, so CI cannot pass without running the tests
that need it. Elsewhere (a developer without root) the test skips and says how to install.
"""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(*names: str, hint: str) -> str:
    """Path of the first of `names` on PATH; otherwise skip (or fail under `make test`)."""
    for name in names:
        found = shutil.which(name)
        if found is not None:
            return found
    why = f"{' / '.join(names)} not installed ({hint})"
    if os.environ.get("MONITOR_REQUIRE_TOOLS") == "1":
        pytest.fail(why)
    pytest.skip(why)
