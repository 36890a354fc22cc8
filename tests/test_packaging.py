"""A non-editable install works from any directory: the wheel carries the gin configs, the launch templates
and the console scripts, and `it-jax-train` trains from outside the repository."""

import json
import pathlib
import subprocess
import sys
import zipfile

import pytest
import tiny

REPO = pathlib.Path(__file__).resolve().parents[1]


def _run(command, cwd, timeout=600):
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, " ".join(map(str, command)) + "\n" + result.stdout[-2000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("wheel")
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", out, REPO]
    _run(build, cwd=out)
    (path,) = out.glob("it_jax-*.whl")
    return path


def test_the_wheel_carries_configs_templates_collections_and_commands(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert {"it_jax/gin/runs/demo.gin", "it_jax/gin/models/t5_tiny.gin", "mixtures/synthetic/__init__.py"} <= names
    assert any(n.startswith("it_jax/cluster/templates/") for n in names)
    for command in ("it-jax-train", "it-jax-eval", "it-jax-infer", "it-jax-convert", "it-jax-inspect"):
        assert f"{command} = it_jax.cli." in entry_points
    assert not any(n.startswith(("tests/", "scripts/")) for n in names)


def test_a_fresh_venv_trains_from_outside_the_repository(wheel, tmp_path):
    venv = tmp_path / "venv"
    # The dependencies come from this interpreter's site-packages; it_jax only from the wheel.
    _run([sys.executable, "-m", "venv", "--system-site-packages", venv], cwd=tmp_path)
    _run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", wheel], cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run([venv / "bin" / "python", "-c", "import it_jax; print(it_jax.__file__)"], cwd=elsewhere)
    assert where.stdout.strip().startswith(str(venv)), where.stdout
    bindings = [*tiny.T5_GIN_BINDINGS, "TRAIN_STEPS = 2", "train_run.save_every = 2", "train_run.eval_every = 0"]
    command = [venv / "bin" / "it-jax-train", "--model_dir=run", "--gin_bindings=main.evaluate = False"]
    _run([*command, *(f"--gin_bindings={b}" for b in bindings)], cwd=elsewhere)
    run = elsewhere / "run"
    assert (run / "checkpoints" / "2").is_dir()
    assert json.loads((run / "run.json").read_text())["task_modules"] == ["mixtures.synthetic"]
    assert "include" not in (run / "config.gin").read_text()  # the operative bindings, includes resolved
