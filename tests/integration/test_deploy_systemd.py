"""deploy/systemd/monitor.service: systemd's own checks, the hardening, and a real start with
the unit's exact command line and environment against the embedded broker."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from monitor.config import load_config, parse_config
from tests.integration.daemon_helpers import free_port
from tests.integration.deploy_helpers import (
    DEPLOY,
    load_yaml,
    require_routes,
    served_routes,
    tool,
)

UNIT_FILE = DEPLOY / "systemd" / "monitor.service"
ENV_FILE = DEPLOY / "systemd" / "monitor.env"
INSTALLED_BINARY = "/opt/monitor/bin/monitor"  # where the unit's install notes put the venv
INSTALLED_CONFIG = "/etc/monitor/monitor.yaml"  # ... and the example config
STATE_DIR = "/var/lib/monitor"  # StateDirectory=monitor
CACHE_DIR = "/var/cache/monitor"  # CacheDirectory=monitor


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> every value in order (systemd keys may repeat)."""
    unit: dict[str, dict[str, list[str]]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            unit.setdefault(section, {})
            continue
        key, _, value = line.partition("=")
        unit[section].setdefault(key.strip(), []).append(value.strip())
    return unit


UNIT = parse_unit(UNIT_FILE.read_text())
SERVICE = UNIT["Service"]


def one(key: str) -> str:
    values = SERVICE[key]
    assert len(values) == 1, f"{key} set {len(values)} times"
    return values[0]


def unit_environment() -> dict[str, str]:
    """Environment= assignments in order, then the EnvironmentFile (its values win)."""
    env: dict[str, str] = {}
    for line in SERVICE.get("Environment", []):
        for item in shlex.split(line):
            key, _, value = item.partition("=")
            env[key] = value
    env_files = [f.lstrip("-") for f in SERVICE.get("EnvironmentFile", [])]
    assert env_files == ["/etc/monitor/monitor.env"]
    for raw in ENV_FILE.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def exec_start() -> list[str]:
    return shlex.split(one("ExecStart"))


def test_unit_hardening() -> None:
    expected = {
        "DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
        "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
        "StateDirectory": "monitor", "Restart": "on-failure", "RestrictSUIDSGID": "yes",
        "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes", "LockPersonality": "yes", "CapabilityBoundingSet": "",
    }
    for key, value in expected.items():
        assert one(key) == value, key
    assert "User" not in SERVICE or one("User") not in {"root", "0"}
    assert one("KillSignal") == "SIGTERM"
    assert one("RestartPreventExitStatus") == "2"  # configuration errors do not loop


def test_stop_timeout_outlasts_the_shutdown_checkpoint() -> None:
    cfg = load_config(DEPLOY / "config" / "monitor.yaml", unit_environment())
    assert int(one("TimeoutStopSec")) > cfg.checkpoint.shutdown_timeout_s


def test_unit_paths_match_the_config_and_the_state_directory() -> None:
    argv = exec_start()
    assert argv[0] == INSTALLED_BINARY
    assert argv[1:] == ["run", "--config", INSTALLED_CONFIG]
    env = unit_environment()
    cfg = parse_config(load_yaml(DEPLOY / "config" / "monitor.yaml"), env)
    # the only writable place under ProtectSystem=strict is the StateDirectory
    assert cfg.checkpoint.state_dir == STATE_DIR == f"/var/lib/{one('StateDirectory')}"
    assert env["HOME"] == STATE_DIR and one("WorkingDirectory") == STATE_DIR
    assert env["HF_HUB_OFFLINE"] == "1"
    for r in cfg.alerts.receivers:
        if r.secret_env:
            assert r.secret_env in env, f"{r.secret_env} missing from {ENV_FILE.name}"


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze", "apt-get install -y systemd")
    # verify checks that ExecStart's binary exists: point it at this venv's console script
    # (the same entry point the unit's install notes put at /opt/monitor/bin/monitor)
    unit = tmp_path / "monitor.service"
    unit.write_text(UNIT_FILE.read_text().replace(f"ExecStart={INSTALLED_BINARY} ",
                                                  f"ExecStart={Path(sys.executable).parent}"
                                                  "/monitor ", 1))
    out = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and not out.stderr.strip(), out.stdout + out.stderr


def test_systemd_analyze_security_exposure_is_low() -> None:
    analyze = tool("systemd-analyze", "apt-get install -y systemd")
    out = subprocess.run([analyze, "security", "--offline=true", "--no-pager", str(UNIT_FILE)],
                         capture_output=True, text=True, timeout=60)
    if "--offline" in out.stderr and out.returncode != 0:
        pytest.skip("systemd-analyze security --offline needs systemd >= 250")
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out.stdout + out.stderr)
    assert m, out.stdout + out.stderr
    assert float(m.group(1)) <= 2.0, out.stdout  # systemd rates up to 2.0 "OK"


def _get(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return int(r.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except OSError:
        return 0


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_daemon_starts_with_the_units_command_line_and_environment(tmp_path: Path) -> None:
    """ExecStart as written, with the two install paths mapped to this checkout (the venv's
    console script, the example config), the unit's Environment= and the example
    EnvironmentFile, and what systemd itself provides (StateDirectory, CacheDirectory) in a
    temporary directory. The test then overrides what a host would: the broker (embedded,
    on 127.0.0.1), the HTTP port, and the alert receivers (the example's are compose host
    names; no traffic leaves 127.0.0.1)."""
    state, cache = tmp_path / "state", tmp_path / "cache"
    state.mkdir()
    cache.mkdir()
    argv = exec_start()
    argv[0] = str(Path(sys.executable).parent / "monitor")
    argv[argv.index(INSTALLED_CONFIG)] = str(DEPLOY / "config" / "monitor.yaml")
    env = {k: v.replace(STATE_DIR, str(state)).replace(CACHE_DIR, str(cache))
           for k, v in unit_environment().items()}
    port = free_port()
    env.update({
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "MONITOR__KAFKA__BOOTSTRAP_SERVERS": "embedded",
        "MONITOR__KAFKA__SESSION_TIMEOUT_MS": "6000",  # Tansu answers a join after ~half
        "MONITOR__KAFKA__FETCH_MAX_WAIT_MS": "50",
        "MONITOR__HTTP__HOST": "127.0.0.1",
        "MONITOR__HTTP__PORT": str(port),
        "MONITOR__ALERTS__RECEIVERS": "[]",
    })
    assert env["MONITOR__CHECKPOINT__STATE_DIR"] == str(state)
    require_routes({"/healthz", "/readyz"}, "this test")
    log = tmp_path / "daemon.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=state, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        ready = 0
        while time.monotonic() < deadline and proc.poll() is None:
            ready = _get(port, "/readyz")
            if ready == 200:
                break
            time.sleep(0.25)
        assert ready == 200, f"no /readyz 200 (last {ready}, exit {proc.poll()}):\n" \
                             f"{log.read_text(errors='replace')[-3000:]}"
        assert _get(port, "/healthz") == 200
        if "/metrics" in served_routes():  # scraped by prometheus.yml and the ServiceMonitor
            assert _get(port, "/metrics") == 200
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=int(one("TimeoutStopSec")))
        assert rc == 0, log.read_text(errors="replace")[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
