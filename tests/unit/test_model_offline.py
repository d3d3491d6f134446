"""The real text model loads from the wheel's local files with every network path dead."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

PROBE = """
import json, numpy as np
from monitor.embed.text import SentenceTransformerModel
m = SentenceTransformerModel(batch_size=8)
v = m.embed(["refund my card payment", "my card payment needs a refund", "weather in Paris"])
print(json.dumps({"dim": m.dim, "norms": np.linalg.norm(v, axis=1).round(4).tolist(),
                  "near": float(v[0] @ v[1]), "far": float(v[0] @ v[2]), "device": m.device}))
"""


def test_default_model_loads_offline_and_embeds() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    # any attempt to reach a hub goes to a dead proxy and fails loudly
    env.update(HF_HUB_OFFLINE="1", HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9",
               NO_PROXY="", HF_HOME=os.path.join(os.environ.get("TMPDIR", "/tmp"), "no-hf-home"))
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         timeout=300, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["dim"] == 384
    assert result["norms"] == [1.0, 1.0, 1.0]
    assert result["near"] > result["far"] + 0.3
