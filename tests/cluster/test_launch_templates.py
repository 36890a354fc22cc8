"""The launch files of `it_jax.cluster` start the same `python -m it_jax.cli.train` command on every host, with the same
gin files and bindings; only the cluster (or, locally, --process_id) tells the processes apart. A two-process
local launch through `scripts/launch.py --run` trains and saves."""

import dataclasses
import os
import pathlib
import re
import subprocess
import sys

import pytest
import tiny

from it_jax import errors
from it_jax.cluster import launch_files as cluster
from it_jax.train import distributed

yaml = pytest.importorskip("yaml")

REPO = pathlib.Path(__file__).resolve().parents[2]
BINDINGS = ("train_run.mixture = 'synthetic_heldout_entailment'", "TRAIN_STEPS = 100", 'x = "$HOME"')


def _spec(hosts: int, **overrides) -> cluster.LaunchSpec:
    spec = cluster.LaunchSpec(
        model_dir="gs://bucket/runs/flan",
        hosts=hosts,
        gin_files=("runs/flan2021_heldout.gin", "runs/extra.gin"),
        gin_bindings=BINDINGS,
        extra_flags=("--heartbeat_timeout=60",),
        image="us-docker.pkg.dev/proj/repo/it-jax:1",
        job_name="flan-base",
        tpu="v5p",
        topology={2: "2x2x2", 3: "2x2x3", 4: "2x2x4"}.get(hosts),
        cluster="tpu-cluster",
    )
    return dataclasses.replace(spec, **overrides)


def _base(spec: cluster.LaunchSpec) -> list[str]:
    """What every host's command must be, written out here rather than taken from the renderer."""
    gin = [f"--gin_file={f}" for f in spec.gin_files] + [f"--gin_bindings={b}" for b in spec.gin_bindings]
    return [spec.python, "-m", "it_jax.cli.train", *gin, f"--model_dir={spec.model_dir}", *spec.extra_flags]


def _words(line: str) -> list[str]:
    """The words bash makes of the command line `line` (after quote removal and expansion, no globbing)."""
    script = f"set -f; words() {{ printf '%s\\0' \"$@\"; }}; words {line}"
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True, env={"HOME": "/home"})
    return result.stdout.split("\0")[:-1]


def _shell_words(text: str, start: str) -> list[str]:
    """The words of the (continued) shell line of `text` that starts with `start`."""
    joined = text.replace("\\\n", " ")
    (line,) = [line for line in joined.splitlines() if line.startswith(start)]
    return _words(line)


def _slurm_hosts(text: str, spec: cluster.LaunchSpec) -> list[list[str]]:
    words = _shell_words(text, "srun ")
    start = words.index(spec.python)
    options = dict(w.split("=", 1) for w in words[1:start])
    assert options["--nodes"] == str(spec.hosts) and options["--ntasks-per-node"] == "1"
    return [words[start:]] * (int(options["--nodes"]) * int(options["--ntasks-per-node"]))


def _gke_hosts(text: str, spec: cluster.LaunchSpec) -> list[list[str]]:
    manifest = yaml.safe_load(text)
    (job,) = manifest["spec"]["replicatedJobs"]
    assert job["replicas"] == 1
    pods = job["template"]["spec"]
    assert pods["completionMode"] == "Indexed" and pods["parallelism"] == pods["completions"] == spec.hosts
    (container,) = pods["template"]["spec"]["containers"]
    return [container["command"]] * pods["parallelism"]


def _xpk_hosts(text: str, spec: cluster.LaunchSpec) -> list[list[str]]:
    words = _shell_words(text, "xpk ")
    assert words[:3] == ["xpk", "workload", "create"]
    flags = dict(w.removeprefix("--").split("=", 1) for w in words[3:])
    chips = cluster.topology_chips(spec.topology, spec.tpu)
    assert flags["tpu-type"] == f"v5p-{2 * chips}" and chips == 4 * spec.hosts  # v5p counts 2 TensorCores a chip
    assert flags["num-slices"] == "1" and flags["workload"] == spec.job_name and flags["docker-image"] == spec.image
    command = _words(flags["command"])  # xpk runs it with bash in each pod
    return [command[command.index(spec.python) :]] * spec.hosts


def _local_hosts(text: str, spec: cluster.LaunchSpec) -> list[list[str]]:
    lines = [line for line in text.splitlines() if line.endswith(" &")]
    return [_words(line.removesuffix(" &")) for line in lines]


HOSTS = {"slurm": _slurm_hosts, "gke": _gke_hosts, "xpk": _xpk_hosts, "local": _local_hosts}


@pytest.mark.parametrize("hosts", [2, 3, 4])
@pytest.mark.parametrize("target", cluster.TARGETS)
def test_every_host_runs_the_same_entry_point_with_the_same_gin(target, hosts):
    spec = _spec(hosts, port=8476 if target == "local" else None)
    commands = HOSTS[target](cluster.render(target, spec), spec)
    assert len(commands) == hosts
    base = _base(spec)
    for process_id, command in enumerate(commands):
        assert command[: len(base)] == base, command
        per_host = command[len(base) :]
        if target == "local":
            expected = ["--coordinator_address=127.0.0.1:8476", f"--num_processes={hosts}"]
            assert per_host == [*expected, f"--process_id={process_id}"]
        else:  # the cluster's environment tells the processes apart
            assert per_host == ["--coordinator_address=auto"]


def test_the_slurm_script_asks_one_task_per_node_with_all_its_gpus():
    spec = _spec(3, chips_per_host=4, partition="a100", port=12345, image=None, workdir="/shared/it_jax")
    text = cluster.render("slurm", spec)
    sbatch = {
        key: value
        for key, _, value in (line.removeprefix("#SBATCH ").partition("=") for line in text.splitlines())
        if key.startswith("--")
    }
    assert sbatch["--nodes"] == "3" and sbatch["--ntasks-per-node"] == "1" and sbatch["--gpus-per-node"] == "4"
    assert "--exclusive" in sbatch and sbatch["--partition"] == "a100" and sbatch["--job-name"] == "flan-base"
    assert sbatch["--chdir"] == "/shared/it_jax"
    exports = dict(re.findall(r"^export (\w+)=(\S+)$", text, re.MULTILINE))
    assert exports == {"JAX_LOCAL_DEVICE_IDS": "0,1,2,3", "JAX_COORDINATOR_PORT": "12345"}
    assert "--container-image" not in text
    with_image = cluster.render("slurm", _spec(2, workdir="/app"))
    assert "--container-image=us-docker.pkg.dev/proj/repo/it-jax:1 --container-workdir=/app" in with_image
    assert "JAX_COORDINATOR_PORT" not in with_image  # JAX's own port, from the job id


def test_the_jobset_places_one_pod_per_tpu_host_of_the_slice():
    spec = _spec(4, workdir="/app", max_restarts=3, port=9000)
    manifest = yaml.safe_load(cluster.render("gke", spec))
    assert manifest["apiVersion"].startswith("jobset.x-k8s.io/") and manifest["kind"] == "JobSet"
    assert manifest["metadata"]["name"] == "flan-base"
    assert manifest["spec"]["failurePolicy"]["maxRestarts"] == 3
    assert manifest["spec"]["network"] == {"enableDNSHostnames": True, "subdomain": "flan-base"}  # headless service
    pod = manifest["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {
        "cloud.google.com/gke-tpu-accelerator": "tpu-v5p-slice",
        "cloud.google.com/gke-tpu-topology": "2x2x4",
    }
    (container,) = pod["containers"]
    assert container["image"] == spec.image and container["workingDir"] == "/app"
    assert container["resources"]["limits"] == {"google.com/tpu": 4}
    assert {"name": "JAX_COORDINATOR_PORT", "value": "9000"} in container["env"]
    assert [p["containerPort"] for p in container["ports"]] == [9000]
    v6e = yaml.safe_load(cluster.render("gke", _spec(4, tpu="v6e", topology="4x4")))
    assert v6e["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]["nodeSelector"] == {
        "cloud.google.com/gke-tpu-accelerator": "tpu-v6e-slice",
        "cloud.google.com/gke-tpu-topology": "4x4",
    }


def test_xpk_names_the_slice_as_xpk_does():
    def tpu_type(tpu, topology, hosts, chips=None):
        spec = _spec(hosts, tpu=tpu, topology=topology, chips_per_host=chips)
        return dict(w.split("=", 1) for w in _shell_words(cluster.render("xpk", spec), "xpk ")[3:])["--tpu-type"]

    assert tpu_type("v5p", "2x2x2", 2) == "v5p-16"
    assert tpu_type("v4", "2x2x4", 4) == "v4-32"
    assert tpu_type("v5e", "4x4", 4) == "v5litepod-16"
    assert tpu_type("v6e", "2x4", 1, chips=8) == "v6e-8"


@pytest.mark.parametrize("target", ["slurm", "xpk", "local"])
def test_shell_launch_files_parse(target, tmp_path):
    path = tmp_path / "launch.sh"
    path.write_text(cluster.render(target, _spec(2, port=8476, workdir="/app")))
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "target, overrides, message",
    [
        ("slurm", {"hosts": 0}, "hosts must be a whole number ≥ 1"),
        ("slurm", {"chips_per_host": 0}, "chips_per_host must be"),
        ("slurm", {"model_dir": ""}, "model_dir is required"),
        ("gke", {"job_name": "Flan_Base"}, "job_name must be"),
        ("gke", {"image": None}, "needs the container image"),
        ("gke", {"topology": None}, "needs the TPU topology"),
        ("gke", {"topology": "2x2"}, "TPU v5p topologies look like AxBxC"),
        ("gke", {"topology": "2x2x0"}, "topologies look like AxBxC"),
        ("gke", {"topology": "2x2x4"}, "topology 2x2x4 has 16 chips, but 2 hosts x 4 chips make 8: use hosts=4"),
        ("gke", {"tpu": "v7"}, "unknown TPU generation 'v7'"),
        ("gke", {"chips_per_host": 8, "topology": "4x4"}, "TPU v5p hosts have 4 chips"),
        ("xpk", {"tpu": "v5e", "topology": "4x4", "chips_per_host": 8}, "8 only on a single-host slice"),
        ("xpk", {"cluster": None}, "needs the GKE cluster"),
        ("local", {}, "needs the coordinator's port"),
        ("mpi", {}, "unknown launch target 'mpi'"),
    ],
)
def test_bad_specs_are_refused_with_the_reason(target, overrides, message):
    with pytest.raises(errors.ConfigError, match=re.escape(message)):
        cluster.render(target, dataclasses.replace(_spec(2), **overrides))


def test_train_py_takes_every_flag_the_launch_files_give_it():
    result = subprocess.run(
        [sys.executable, "-m", "it_jax.cli.train", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    spec = _spec(2, port=1, extra_flags=())
    flags = {word.split("=")[0] for command in cluster.local_commands(spec) for word in command[3:]}
    flags.add(cluster.AUTO_FLAG.split("=")[0])
    assert flags == {
        "--gin_file",
        "--gin_bindings",
        "--model_dir",
        "--coordinator_address",
        "--num_processes",
        "--process_id",
    }
    assert not [flag for flag in flags if flag not in result.stdout]


def _stub_python(tmp_path: pathlib.Path) -> str:
    """An interpreter stand-in: process 1 exits 3, process 2 is killed by SIGKILL (137), the others exit 0."""
    stub = tmp_path / "stub_python"
    stub.write_text('#!/bin/sh\ncase "$*" in *--process_id=1*) exit 3;; *--process_id=2*) kill -9 $$;; esac\n')
    stub.chmod(0o755)
    return str(stub)


def test_local_launches_exit_with_the_worst_status(tmp_path):
    spec = _spec(3, port=8476, python=_stub_python(tmp_path), workdir=str(tmp_path))
    script = tmp_path / "local.sh"
    script.write_text(cluster.render("local", spec))
    assert subprocess.run(["bash", str(script)], check=False).returncode == 137
    script.write_text(cluster.render("local", dataclasses.replace(spec, hosts=2)))
    assert subprocess.run(["bash", str(script)], check=False).returncode == 3
    args = [sys.executable, "scripts/launch.py", "--target=local", "--hosts=2", f"--model_dir={tmp_path}"]
    args += [f"--python={spec.python}", "--run"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    assert subprocess.run(args, cwd=REPO, env=env, timeout=60, check=False).returncode == 3


def test_launch_py_writes_what_render_gives(tmp_path):
    out = tmp_path / "train.sbatch"
    args = [sys.executable, "scripts/launch.py", "--target=slurm", "--hosts=3", "--chips_per_host=4"]
    args += ["--gin_file=runs/flan2021_heldout.gin", "--model_dir=/shared/run", f"--out={out}", "--", "--verbose"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    spec = cluster.LaunchSpec(
        model_dir="/shared/run",
        hosts=3,
        chips_per_host=4,
        gin_files=("runs/flan2021_heldout.gin",),
        extra_flags=("--verbose",),
    )
    assert out.read_text() == cluster.render("slurm", spec) and os.access(out, os.X_OK)
    bad = subprocess.run(
        [*args[:3], "--hosts=0", "--model_dir=x"], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2 and "hosts must be a whole number ≥ 1" in bad.stderr
    gke = [sys.executable, "scripts/launch.py", "--target=gke", "--topology=2x2x4", "--image=i", "--model_dir=gs://b"]
    manifest = subprocess.run(gke, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert manifest.returncode == 0, manifest.stderr
    assert yaml.safe_load(manifest.stdout)["spec"]["replicatedJobs"][0]["template"]["spec"]["parallelism"] == 4


@pytest.mark.slow
def test_two_local_processes_train_through_launch_py(tmp_path):
    """The local target runs the very entry point the cluster templates run, as two processes on 127.0.0.1."""
    model_dir = tmp_path / "run"
    bindings = [*tiny.T5_GIN_BINDINGS, "TRAIN_STEPS = 2", "train_run.save_every = 2", "train_run.eval_every = 0"]
    bindings.append("main.evaluate = False")
    args = [sys.executable, "scripts/launch.py", "--target=local", "--hosts=2", f"--model_dir={model_dir}", "--run"]
    args += [f"--gin_bindings={binding}" for binding in bindings]
    env = {**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO)}
    for names in distributed.ENV_VARS.values():
        for name in names:
            env.pop(name, None)
    result = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (model_dir / "checkpoints" / "2").is_dir(), sorted(p.name for p in model_dir.rglob("*"))
