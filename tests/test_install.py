"""`pip install jedisith` serves without TensorFlow; `jedisith[train]` adds it.

Each check runs in a fresh interpreter where importing `tensorflow` or `keras` fails exactly as it
does when they are not installed (a meta-path finder raises `ModuleNotFoundError` for them), so
the suite's own environment, which has TensorFlow for training, proves the lean install works.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXTRA = "pip install 'jedisith[train]'"

WITHOUT_TENSORFLOW = """
import sys

class _NotInstalled:
    tried = []

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("tensorflow", "keras"):
            self.tried.append(name)
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NotInstalled())
"""

pytestmark = pytest.mark.slow


def run_without_tensorflow(
    code: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `code` (after the prelude that hides TensorFlow) in this project's interpreter."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DISCORD_", "MODEL_", "OOD_", "LOG_LEVEL"))
    }
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_TENSORFLOW + code, *args],
        cwd=ROOT,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=180,
    )


def run_module(module: str, *args: str, env: dict[str, str] | None = None):
    """`python -m MODULE ARGS...` without TensorFlow."""
    code = f"import runpy; runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
    return run_without_tensorflow(code, *args, env=env)


def requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\s<>=!~;\[(]", line, maxsplit=1)[0].lower() for line in requirements}


def test_tensorflow_is_only_in_the_train_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "tensorflow" not in requirement_names(project["dependencies"])
    assert "ai-edge-litert" in requirement_names(project["dependencies"])
    assert "tensorflow" in requirement_names(project["optional-dependencies"]["train"])
    # The README's commands install everything, so the whole suite and training run.
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"pip install .*-e '\.\[dev,train,postgres\]'", makefile)


def test_the_serving_path_imports_without_tensorflow() -> None:
    code = """
import json
import bot.__main__, bot.client, model.cli, model.runtime, model.worker, model.detector
import model.calibration, model.render, playground.__main__
print(json.dumps({"tried": _NotInstalled.tried}))
"""
    result = run_without_tensorflow(code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {"tried": []}


def test_litert_classifies_without_tensorflow() -> None:
    code = """
import json
from model.bundle import DEFAULT_MODEL_DIR
from model.preprocess import load_image
from model.runtime import Classifier, resolve_backend

classifier = Classifier.load(DEFAULT_MODEL_DIR, "litert")
image = load_image(open("playground/samples/sith-1.jpg", "rb").read())
prediction = classifier.predict([image])[0]
maps = classifier.features(image)
print(json.dumps({
    "auto": resolve_backend("auto"),
    "backend": classifier.backend_name,
    "label": prediction.label,
    "score": prediction.score,
    "maps": len(maps.maps),
    "classes": list(classifier.info.class_names),
}))
"""
    result = run_without_tensorflow(code)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.splitlines()[-1])
    assert out["auto"] == "litert" and out["backend"] == "litert"
    assert out["label"] in out["classes"] and 0.0 <= out["score"] <= 1.0
    assert out["maps"] == 5


def test_auto_on_a_gpu_without_tensorflow_serves_on_litert_and_says_so_once() -> None:
    code = """
import json, logging
import model.runtime as runtime

records = []
handler = logging.Handler()
handler.emit = records.append
logging.getLogger("model.runtime").addHandler(handler)
logging.getLogger("model.runtime").setLevel(logging.DEBUG)
runtime._has_gpu_driver = lambda: True  # a GPU machine without the train extra
choices = [runtime.resolve_backend("auto") for _ in range(3)]
print(json.dumps({
    "choices": choices,
    "log": [(r.levelname, r.getMessage()) for r in records],
}))
"""
    result = run_without_tensorflow(code)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.splitlines()[-1])
    assert out["choices"] == ["litert"] * 3
    assert len(out["log"]) == 1
    level, message = out["log"][0]
    assert level == "INFO" and "TensorFlow extra is not installed" in message
    assert EXTRA in message


def test_the_tensorflow_backend_without_tensorflow_is_a_model_error_naming_the_extra() -> None:
    code = """
from model.bundle import DEFAULT_MODEL_DIR, ModelError
from model.runtime import Classifier, enable_memory_growth

for attempt in (lambda: Classifier.load(DEFAULT_MODEL_DIR, "tensorflow"), enable_memory_growth):
    try:
        attempt()
    except ModelError as error:
        print(error)
    else:
        raise SystemExit("no ModelError")
"""
    result = run_without_tensorflow(code)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        assert EXTRA in line and "not installed" in line


def test_jedisith_with_the_tensorflow_backend_without_tensorflow_exits_2_with_one_line() -> None:
    result = run_module("model.cli", "info", "--backend", "tensorflow")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jedisith: cannot load the model: ")
    assert EXTRA in lines[0]


def test_jedisith_classifies_without_tensorflow() -> None:
    result = run_module("model.cli", "classify", "playground/samples/jedi-1.jpg", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["label"] in ("jedi", "sith")


def test_the_bot_starts_without_tensorflow(tmp_path: Path) -> None:
    help_ = run_module("bot", "--help")
    assert help_.returncode == 0, help_.stderr
    assert "jedisith-bot" in help_.stdout
    # It loads the shipped model on litert, then stops at the server that is not there.
    env = {"DISCORD_TOKEN": "x", "DISCORD_API_URL": "http://127.0.0.1:9", "LOG_LEVEL": "INFO"}
    result = run_module("bot", "--env-file", str(tmp_path / "none.env"), env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert re.search(r"model \S+ loaded \(litert backend", result.stderr), result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("jedisith-bot: cannot reach")


def test_the_bot_with_the_tensorflow_backend_without_tensorflow_stops_with_one_line(
    tmp_path: Path,
) -> None:
    env = {"DISCORD_TOKEN": "x", "MODEL_BACKEND": "tensorflow", "LOG_LEVEL": "WARNING"}
    result = run_module("bot", "--env-file", str(tmp_path / "none.env"), env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("jedisith-bot: cannot load the model") and EXTRA in lines[0]


def test_training_without_tensorflow_says_what_to_install(tmp_path: Path) -> None:
    args = (str(tmp_path), "--out", str(tmp_path / "model"))
    # `python -m training DATA`, and what the `jedisith-train` script runs.
    entry_point = "from training.train import main; raise SystemExit(main())"
    for result in (run_module("training", *args), run_without_tensorflow(entry_point, *args)):
        assert result.returncode == 1
        assert result.stdout == ""
        assert result.stderr.strip() == f"jedisith-train needs TensorFlow: {EXTRA}"
    assert not (tmp_path / "model").exists()
    # --help needs no TensorFlow either.
    help_ = run_module("training", "--help")
    assert help_.returncode == 0 and "jedisith-train" in help_.stdout
