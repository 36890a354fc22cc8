"""The README's "Bring your own tasks" walkthrough runs as written: its task module is saved under the name
the README gives it, then its shell block runs, line by line as a user would paste it, in an empty
directory outside the repository (the installed console scripts on PATH)."""

import json
import os
import pathlib
import re
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
SECTION = re.compile(r"<!-- walkthrough -->(.*?)<!-- /walkthrough -->", re.S)
BLOCK = re.compile(r"```(python|bash)\n(.*?)```", re.S)


def walkthrough() -> tuple[str, str, str]:
    """(the module's file name, its code, the shell commands) of the README's walkthrough."""
    (section,) = SECTION.findall((REPO / "README.md").read_text(encoding="utf-8"))
    blocks = dict((kind, text) for kind, text in BLOCK.findall(section))
    (name,) = re.findall(r"^# (\w+\.py)\b", blocks["python"], re.M)
    return name, blocks["python"], blocks["bash"]


def test_the_readme_walkthrough_registers_inspects_trains_evaluates_and_exports(tmp_path):
    name, module, commands = walkthrough()
    (tmp_path / name).write_text(module, encoding="utf-8")
    env = {**os.environ, "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("XLA_FLAGS", None)  # one CPU device, as on a user's machine
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", commands], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "my_parity" in result.stdout  # inspected, trained on and evaluated by name
    run = json.loads((tmp_path / "runs" / "parity" / "run.json").read_text())
    assert run["task_modules"][-1] == str(tmp_path / name)  # a .py path is recorded absolute
    results = json.loads((tmp_path / "runs" / "parity" / "eval" / "results.json").read_text())
    assert [task["task"] for task in results["tasks"]] == ["my_parity"] and results["step"] is not None
    assert (tmp_path / "exported" / "parity" / "model.json").is_file()
    answers = [json.loads(line) for line in (tmp_path / "answers.jsonl").read_text().splitlines()]
    assert answers and all(isinstance(row["score"], float) for row in answers)
