"""Reference bootstrap (issue 13, must-show 5): `monitor fit` writes a seed file; a pipeline
seeded from it scores from its first event, event for event as `replay --reference` with
the same history; a seed fitted under other settings is refused in one line."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.cli import main
from monitor.config import MonitorConfig, parse_config
from monitor.errors import ConfigError
from monitor.pipeline import Pipeline
from monitor.state.codec import decode_state, encode_state
from monitor.state.seed import SEED_MAGIC, Seed, read_seed
from monitor.state.snapshot import state_digest
from monitor.tools.fit import fit
from monitor.tools.replay import decode_file, load_reference, replay
from monitor.tools.synthetic import DEMO_CONFIG, generate
from monitor.wiring import pipeline_factory
from tests.fakes import HashingTextModel


def _tree(**score: Any) -> dict[str, Any]:
    tree = copy.deepcopy(DEMO_CONFIG)
    tree["fields"]["segment"] = "country"  # GB, FR, DE; NG (fraud bursts) is not in history
    tree["score"] = {"warmup": 100, "alpha": 0.01, "learn_block": 32, **score}
    tree["drift"] = {"horizon": 2_000, "window": 100, "hysteresis": 100}
    return tree


def _write(path: Path, lines: list[bytes]) -> str:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("seed")
    history, _ = generate(1_500, seed=5, drift_at=None, fraud_bursts=0, malformed=3)
    stream, _ = generate(900, seed=6, drift_at=0.5, fraud_bursts=2, malformed=4,
                         start_ts=1_767_300_000.0, first_id=50_000)
    out = {"history": _write(tmp / "history.jsonl", history),
           "stream": _write(tmp / "stream.jsonl", stream), "seed": str(tmp / "seed.mon")}
    fit(parse_config(_tree()), out["history"], out["seed"], progress=False,
        text_model=HashingTextModel(), clock=lambda: 1_767_000_000.0)
    return out


def _seeded_rows(cfg: MonitorConfig, seed: Seed, stream: str, batch: int) -> list[dict[str, Any]]:
    pipeline = Pipeline.build(cfg, HashingTextModel(), seed=seed)
    events = list(decode_file(stream, cfg, None, {"rejected": 0}))
    rows = []
    for i in range(0, len(events), batch):
        rows += [s.as_dict() for s in pipeline.process(events[i : i + batch])[0]]
    return rows


def test_seeded_pipeline_scores_from_the_first_event_as_replay_reference_does(
        files: dict[str, str], tmp_path: Path) -> None:
    cfg = parse_config(_tree())
    out = tmp_path / "replay.jsonl"
    replay(cfg, files["stream"], Pipeline.build(cfg, HashingTextModel()),
           reference=files["history"], out=str(out), progress=False)
    expected = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    for row in expected:
        row.pop("label", None)  # replay echoes the label; the score does not carry it
    seed = read_seed(files["seed"], cfg)
    first = _seeded_rows(cfg, seed, files["stream"], batch=37)
    assert first == expected  # every field: score, p-value, flag, risk, evidence, driver
    # the shared seed was not changed by the first pipeline: a second one agrees too
    assert _seeded_rows(cfg, seed, files["stream"], batch=256) == expected
    known = [r for r in first if r["segment"] in seed.segments]
    assert known[0] is first[0] and len(known) > 800
    assert all(r["p_value"] is not None and not r["warming_up"] for r in known)
    # a segment the history never saw warms up as today
    assert {r["segment"] for r in first} - set(seed.segments) == {"NG"}
    assert all(r["warming_up"] for r in first if r["segment"] == "NG")


def test_seed_file_round_trip(files: dict[str, str]) -> None:
    cfg = parse_config(_tree())
    fresh = Pipeline.build(cfg, HashingTextModel())
    load_reference(fresh, files["history"], cfg, None, progress=False)
    seed = read_seed(files["seed"], cfg)
    h = seed.header
    assert Path(files["seed"]).read_bytes()[: len(SEED_MAGIC)] == SEED_MAGIC
    assert (h["events"], h["rejected"], h["segments"], h["ready"]) == (1_500, 3, 3, 3)
    assert h["created"] == "2025-12-29T09:20:00+00:00" and h["history"] == "history.jsonl"
    assert set(seed.segments) == {"GB", "FR", "DE"}
    seeded = Pipeline.build(cfg, HashingTextModel(), seed=seed)
    assert not seeded.engine.segments  # segments are seeded when first seen
    for name, model in fresh.engine.segments.items():
        # a segment created from the file holds what the replay's fit left, watch included
        own = seeded.engine._segment(name).state_dict()
        assert state_digest(own) == state_digest(model.state_dict())
    assert state_digest(seeded.encoder.state_dict()) == state_digest(fresh.encoder.state_dict())


def test_restored_state_wins_and_segments_it_lacks_are_seeded(files: dict[str, str]) -> None:
    cfg = parse_config(_tree())
    seed = read_seed(files["seed"], cfg)
    events = list(decode_file(files["stream"], cfg, None, {"rejected": 0}))
    first = Pipeline.build(cfg, HashingTextModel(), seed=seed)
    first.process(events[:300])
    state = decode_state(encode_state(first.state_dict()))
    del state["engine"]["segments"]["FR"]  # as if FR were never seen by this partition
    restored = Pipeline.build(cfg, HashingTextModel(), seed=seed)
    restored.load_state_dict(state)
    assert "FR" not in restored.engine.segments
    assert restored.engine.segments["GB"].seen == first.engine.segments["GB"].seen > 0
    fr = next(e for e in events[300:] if e.segment == "FR")
    score = restored.process([fr])[0][0]
    assert score.p_value is not None and not score.warming_up
    assert restored.engine.segments["FR"].seen == 1


def test_an_evicted_segment_starts_from_the_seed_again(files: dict[str, str]) -> None:
    cfg = parse_config(_tree(max_segments=1))  # the cap is not fitted: the seed still fits
    seed = read_seed(files["seed"], cfg)
    pipeline = Pipeline.build(cfg, HashingTextModel(), seed=seed)
    events = list(decode_file(files["stream"], cfg, None, {"rejected": 0}))
    scores, _ = pipeline.process(events[:200])
    assert pipeline.engine.evicted > 0
    assert all(s.p_value is not None for s in scores if s.segment != "NG")


@pytest.mark.parametrize("change", [{"score": {"alpha": 0.05}}, {"embed": {"threads": 1}},
                                    {"drift": {"window": 50}}, {"score": {"max_segments": 9}}])
def test_runtime_settings_may_change_without_a_refit(files: dict[str, str],
                                                     change: dict[str, Any]) -> None:
    tree = _tree()
    for section, values in change.items():
        tree[section] = {**tree.get(section, {}), **values}
    assert read_seed(files["seed"], parse_config(tree)).header["segments"] == 3


def test_a_seed_fitted_with_other_settings_is_refused_in_one_line(
        files: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as err:
        read_seed(files["seed"], parse_config(_tree(warmup=200)), "checkpoint.seed_file")
    msg = str(err.value)
    assert msg.startswith("checkpoint.seed_file ") and "\n" not in msg
    assert "score.warmup: 100 in the file, 200 here" in msg and "monitor fit" in msg
    tree = _tree()
    tree["fields"]["categorical"] = ["country"]
    with pytest.raises(ConfigError, match=r"fields\.categorical"):
        read_seed(files["seed"], parse_config(tree))


def test_unreadable_seed_files_are_one_line_config_errors(files: dict[str, str],
                                                          tmp_path: Path) -> None:
    cfg = parse_config(_tree())
    data = Path(files["seed"]).read_bytes()
    head, _, body = data[len(SEED_MAGIC):].partition(b"\n")
    header = orjson.loads(head)
    cases = {
        "missing": (None, "No such file"),
        "snapshot": (encode_state({"a": 1}), "not a seed file"),
        "truncated": (data[:-100], "truncated or corrupt"),
        "release": (SEED_MAGIC + orjson.dumps({**header, "state_format": "MON3"}) + b"\n"
                    + body, "fitted by another release (state format MON3"),
        "format": (SEED_MAGIC + orjson.dumps({**header, "format": 9}) + b"\n" + body,
                   "seed format 9"),
    }
    for name, (content, words) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(ConfigError) as err:
            read_seed(path, cfg, "--seed")
        assert words in str(err.value) and "\n" not in str(err.value), name


def test_daemon_pipelines_start_from_the_seed(files: dict[str, str]) -> None:
    cfg = parse_config(_tree())
    seed = read_seed(files["seed"], cfg)
    new_pipeline, _ = pipeline_factory(cfg, HashingTextModel(), seed)
    pipeline = new_pipeline()
    assert pipeline.engine.seeds is seed.segments
    assert state_digest(pipeline.encoder.state_dict()) == state_digest(seed.encoder)


# -- the command line (tabular config: no text model) -----------------------------------

TABULAR = ("fields:\n  id: id\n  segment: country\n  label: is_fraud\n"
           "  numeric: [{name: amount, log: true}]\n  categorical: [category]\n"
           "  required: [merchant, country]\n"
           "score:\n  warmup: 100\n  alpha: 0.01\n")


def test_cli_fit_then_replay_seed(files: dict[str, str], tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TABULAR)
    seed = str(tmp_path / "s.mon")
    assert main(["fit", files["history"], "--config", str(cfg), "--out", seed, "--quiet",
                 "--rejects", str(tmp_path / "rej.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "fitted 1,500 events (3 rejected) into 3 segments (3 with a reference)" in out
    assert len((tmp_path / "rej.jsonl").read_text().splitlines()) == 3
    report = tmp_path / "r.json"
    assert main(["replay", files["stream"], "--config", str(cfg), "--seed", seed, "--quiet",
                 "--report", str(report)]) == 0
    fraud = sum(1 for line in Path(files["stream"]).read_bytes().splitlines()
                if b'"NG"' in line and b'"is_fraud":1' in line)
    assert orjson.loads(report.read_bytes())["warming_up"] == fraud  # NG alone warms up
    capsys.readouterr()
    cfg.write_text(TABULAR.replace("warmup: 100", "warmup: 150"))
    assert main(["replay", files["stream"], "--config", str(cfg), "--seed", seed]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("monitor: configuration error: --seed ") and "\n" not in err
    assert "score.warmup: 100 in the file, 150 here" in err
    (tmp_path / "run.yaml").write_text(cfg.read_text() + "kafka:\n  bootstrap_servers: "
                                       f"127.0.0.1:1\ncheckpoint:\n  seed_file: {seed}\n")
    assert main(["run", "--config", str(tmp_path / "run.yaml")]) == 2
    assert "checkpoint.seed_file" in capsys.readouterr().err


def test_cli_fit_errors(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TABULAR)
    out = str(tmp_path / "s.mon")
    assert main(["fit", str(tmp_path / "nope.jsonl"), "--config", str(cfg), "--out", out]) == 2
    assert "no such input file" in capsys.readouterr().err
    (tmp_path / "bad.jsonl").write_text('{"id": 1}\nnot json\n')
    assert main(["fit", str(tmp_path / "bad.jsonl"), "--config", str(cfg), "--out", out,
                 "--quiet"]) == 1
    assert "no usable events in" in capsys.readouterr().err
    assert not Path(out).exists()
    assert main(["fit", str(tmp_path / "bad.jsonl"), "--config", str(cfg), "--out",
                 str(tmp_path / "no" / "s.mon")]) == 2
    assert "no such directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["replay", "s.jsonl", "--config", str(cfg), "--seed", out, "--reference", "r"])
    assert exit_.value.code == 2
