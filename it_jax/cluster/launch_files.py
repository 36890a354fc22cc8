"""Launch files for a run on several hosts: every host runs the same training command, and only the
cluster's own environment tells each process who it is.

`render(target, spec)` fills a template of `templates/` from a `LaunchSpec`:
  slurm: a batch script for GPU nodes; `srun` starts one task per node, and `jax.distributed` reads
    SLURM's environment (`--coordinator_address=auto`);
  gke: a JobSet manifest for one TPU slice; one pod per TPU VM host, whose TPU_WORKER_ID and
    TPU_WORKER_HOSTNAMES (set by GKE) `jax.distributed` reads (`--coordinator_address=auto`);
  xpk: the `xpk workload create` command that makes the equivalent JobSet;
  local: a shell script starting `hosts` processes on this machine with an explicit coordinator on
    127.0.0.1 (`local_commands` gives the same command lines, for `scripts/launch.py --run`).

The training command is built in one place, `entry_command`.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import math
import re
import shlex
import string

from it_jax import errors

TARGETS = ("slurm", "gke", "xpk", "local")
AUTO_FLAG = "--coordinator_address=auto"
# jax.distributed's coordinator port on a TPU slice when JAX_COORDINATOR_PORT is not set.
JAX_TPU_COORDINATOR_PORT = 8482
REPLICATED_JOB = "slice"  # the JobSet's one replicated job: pods are <job_name>-slice-0-<index>
_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$")  # a DNS label short enough for JobSet's pod names


@dataclasses.dataclass(frozen=True)
class TpuGeneration:
    """What a TPU generation is called by GKE's node labels and by xpk, and the shape of its topologies."""

    accelerator: str  # the node label cloud.google.com/gke-tpu-accelerator
    dimensions: int  # topology "AxB" (2) or "AxBxC" (3)
    xpk_prefix: str  # xpk's --tpu-type is "<prefix>-<count>"
    cores_per_chip: int  # xpk's count: TensorCores (2 per chip on v4, v5p) or chips (v5e, v6e)
    chips_per_host: tuple[int, ...]  # TPU VM shapes; 8 chips only on a single-host slice


TPU_GENERATIONS = {
    "v4": TpuGeneration("tpu-v4-podslice", 3, "v4", 2, (4,)),
    "v5p": TpuGeneration("tpu-v5p-slice", 3, "v5p", 2, (4,)),
    "v5e": TpuGeneration("tpu-v5-lite-podslice", 2, "v5litepod", 1, (1, 4, 8)),
    "v6e": TpuGeneration("tpu-v6e-slice", 2, "v6e", 1, (1, 4, 8)),
}
# Accelerators per host when `LaunchSpec.chips_per_host` is not given.
DEFAULT_CHIPS_PER_HOST = {"slurm": 8, "gke": 4, "xpk": 4, "local": 1}


@dataclasses.dataclass(frozen=True)
class LaunchSpec:
    """One multi-host run: where it runs and the training command's gin configuration.

    Attributes:
      model_dir: the run's directory, shared by every host (gs://..., or a shared file system).
      hosts: machines (SLURM nodes, TPU VM hosts, local processes), one training process on each.
      chips_per_host: GPUs per node (slurm) or TPU chips per VM (gke, xpk); default `DEFAULT_CHIPS_PER_HOST`.
      gin_files, gin_bindings: the training command's --gin_file and --gin_bindings, in order.
      extra_flags: more flags of the training command, e.g. "--heartbeat_timeout=60".
      image: the container image holding this repository (gke, xpk; on slurm, run with pyxis' --container-image).
      job_name: the SLURM job, JobSet or xpk workload name (lowercase letters, digits and '-').
      port: the coordinator's port; default: JAX's choice (SLURM: from the job id; TPU: 8482); local: required.
      tpu, topology: the TPU generation (`TPU_GENERATIONS`) and slice topology, e.g. "v5p" and "2x2x2".
      cluster: the GKE cluster xpk submits to.
      partition: the SLURM partition (default: the cluster's).
      workdir: the repository's directory (default: the image's working directory; SLURM: where sbatch runs).
      max_restarts: how often the JobSet restarts a failed slice (it resumes from the last checkpoint).
      python: the interpreter of the training command.
    """

    model_dir: str
    hosts: int = 2
    chips_per_host: int | None = None
    gin_files: tuple[str, ...] = ()
    gin_bindings: tuple[str, ...] = ()
    extra_flags: tuple[str, ...] = ()
    image: str | None = None
    job_name: str = "it-jax"
    port: int | None = None
    tpu: str = "v5p"
    topology: str | None = None
    cluster: str | None = None
    partition: str | None = None
    workdir: str | None = None
    max_restarts: int = 0
    python: str = "python"


def entry_command(spec: LaunchSpec, *process_flags: str) -> list[str]:
    """The training command every host runs (the argv), followed by `process_flags`."""
    command = [spec.python, "-m", "it_jax.cli.train"]
    command += [f"--gin_file={path}" for path in spec.gin_files]
    command += [f"--gin_bindings={binding}" for binding in spec.gin_bindings]
    return [*command, f"--model_dir={spec.model_dir}", *spec.extra_flags, *process_flags]


def local_commands(spec: LaunchSpec) -> list[list[str]]:
    """The argv of each of the `spec.hosts` local processes: the entry command with 127.0.0.1's coordinator."""
    check(spec, "local")
    flags = [f"--coordinator_address=127.0.0.1:{spec.port}", f"--num_processes={spec.hosts}"]
    return [entry_command(spec, *flags, f"--process_id={i}") for i in range(spec.hosts)]


def chips_per_host(spec: LaunchSpec, target: str) -> int:
    """`spec.chips_per_host`, or the target's default."""
    return spec.chips_per_host if spec.chips_per_host is not None else DEFAULT_CHIPS_PER_HOST[target]


def topology_chips(topology: str, tpu: str) -> int:
    """The number of chips of a TPU slice topology ("2x2x4": 16) of generation `tpu`.

    Raises:
      errors.ConfigError: an unknown generation, or a topology that is not "AxB" (v5e, v6e) or "AxBxC" (v4, v5p).
    """
    generation = _tpu_generation(tpu)
    sizes = topology.split("x")
    if len(sizes) != generation.dimensions or not all(size.isdigit() and int(size) > 0 for size in sizes):
        shape = "x".join("ABC"[: generation.dimensions])
        raise errors.ConfigError(f"TPU {tpu} topologies look like {shape} (whole numbers ≥ 1), got {topology!r}")
    return math.prod(int(size) for size in sizes)


def _tpu_generation(tpu: str) -> TpuGeneration:
    if tpu not in TPU_GENERATIONS:
        raise errors.ConfigError(f"unknown TPU generation {tpu!r}; known: {', '.join(TPU_GENERATIONS)}")
    return TPU_GENERATIONS[tpu]


def check(spec: LaunchSpec, target: str) -> None:
    """Raises `errors.ConfigError` naming the first setting of `spec` that `target` cannot launch."""
    if target not in TARGETS:
        raise errors.ConfigError(f"unknown launch target {target!r}; known: {', '.join(TARGETS)}")
    if not isinstance(spec.hosts, int) or spec.hosts < 1:
        raise errors.ConfigError(f"hosts must be a whole number ≥ 1, got {spec.hosts!r}")
    chips = chips_per_host(spec, target)
    if not isinstance(chips, int) or chips < 1:
        raise errors.ConfigError(f"chips_per_host must be a whole number ≥ 1, got {chips!r}")
    if not spec.model_dir:
        raise errors.ConfigError("model_dir is required: every host reads and writes the run's checkpoints there")
    if not _NAME.match(spec.job_name):
        raise errors.ConfigError(
            f"job_name must be 1-40 lowercase letters, digits and '-', starting with a letter, got {spec.job_name!r}"
        )
    if spec.port is not None and not 0 < spec.port < 65536:
        raise errors.ConfigError(f"port must be 1-65535, got {spec.port}")
    if spec.max_restarts < 0:
        raise errors.ConfigError(f"max_restarts must be ≥ 0, got {spec.max_restarts}")
    if target == "local" and spec.port is None:
        raise errors.ConfigError("a local launch needs the coordinator's port")
    if target in ("gke", "xpk"):
        _check_tpu(spec, target)


def _check_tpu(spec: LaunchSpec, target: str) -> None:
    if not spec.image:
        raise errors.ConfigError(f"a {target} launch needs the container image holding this repository")
    if target == "xpk" and not spec.cluster:
        raise errors.ConfigError("an xpk launch needs the GKE cluster to submit to")
    if not spec.topology:
        raise errors.ConfigError(f"a {target} launch needs the TPU topology, e.g. 2x2x2 (v4, v5p) or 4x4 (v5e, v6e)")
    generation = _tpu_generation(spec.tpu)
    chips = chips_per_host(spec, target)
    if chips not in generation.chips_per_host or (chips == 8 and spec.hosts > 1):
        shapes = " or ".join(map(str, generation.chips_per_host))
        single = " (8 only on a single-host slice)" if 8 in generation.chips_per_host else ""
        raise errors.ConfigError(
            f"TPU {spec.tpu} hosts have {shapes} chips{single}, got {chips} chips on {spec.hosts} hosts"
        )
    total = topology_chips(spec.topology, spec.tpu)
    if total != spec.hosts * chips:
        fix = f"use hosts={total // chips} or" if total % chips == 0 else "use"
        raise errors.ConfigError(
            f"TPU topology {spec.topology} has {total} chips, but {spec.hosts} hosts x {chips} chips make "
            f"{spec.hosts * chips}: {fix} another topology"
        )


def xpk_tpu_type(spec: LaunchSpec) -> str:
    """xpk's name of the slice (--tpu-type), e.g. "v5p-16" for a 2x2x2 v5p slice (8 chips, 16 TensorCores)."""
    generation = _tpu_generation(spec.tpu)
    return f"{generation.xpk_prefix}-{topology_chips(spec.topology or '', spec.tpu) * generation.cores_per_chip}"


def render(target: str, spec: LaunchSpec) -> str:
    """The launch file of `spec` for `target` ("slurm", "gke", "xpk" or "local").

    Raises:
      errors.ConfigError: `spec` does not describe a launch `target` can do (see `check`).
    """
    check(spec, target)
    renderers = {"slurm": _slurm, "gke": _gke, "xpk": _xpk, "local": _local}
    return renderers[target](spec)


def _quote(word: str) -> str:
    """`word` as one shell word: as is when safe, else in double quotes when nothing in it expands there
    (gin bindings: `"--gin_bindings=train_run.mixture='x'"`), else in single quotes."""
    quoted = shlex.quote(word)
    if quoted == word or set(word) & set('"$`\\!'):
        return quoted
    return f'"{word}"'


def _shell_line(argv: list[str]) -> str:
    return " ".join(_quote(word) for word in argv)


def _double_quoted(text: str) -> str:
    """`text` as one double-quoted shell word."""
    return '"' + re.sub(r'(["$`\\])', r"\\\1", text) + '"'


def _template(name: str) -> string.Template:
    return string.Template((importlib.resources.files(__package__) / "templates" / name).read_text())


def _slurm(spec: LaunchSpec) -> str:
    chips = chips_per_host(spec, "slurm")
    sbatch = [f"#SBATCH --partition={spec.partition}"] if spec.partition else []
    sbatch += [f"#SBATCH --chdir={shlex.quote(spec.workdir)}"] if spec.workdir else []
    srun = []
    if spec.image:  # pyxis / enroot
        srun = [f"--container-image={shlex.quote(spec.image)}"]
        srun += [f"--container-workdir={shlex.quote(spec.workdir)}"] if spec.workdir else []
    exports = [f"export JAX_COORDINATOR_PORT={spec.port}"] if spec.port else []
    return _template("slurm.sbatch").substitute(
        job_name=spec.job_name,
        hosts=spec.hosts,
        chips=chips,
        sbatch_options="".join("\n" + line for line in sbatch),
        local_device_ids=",".join(map(str, range(chips))),
        exports="".join("\n" + line for line in exports),
        srun_options="".join(" " + option for option in srun),
        command=_shell_line(entry_command(spec, AUTO_FLAG)),
    )


def _gke(spec: LaunchSpec) -> str:
    port = spec.port or JAX_TPU_COORDINATOR_PORT
    env = [{"name": "JAX_COORDINATOR_PORT", "value": str(port)}]
    return _template("gke_jobset.yaml").substitute(
        tpu=spec.tpu,
        topology=spec.topology,
        hosts=spec.hosts,
        chips=chips_per_host(spec, "gke"),
        job_name=spec.job_name,
        max_restarts=spec.max_restarts,
        replicated_job=REPLICATED_JOB,
        accelerator=_tpu_generation(spec.tpu).accelerator,
        image=json.dumps(spec.image),
        working_dir=f"\n                  workingDir: {json.dumps(spec.workdir)}" if spec.workdir else "",
        command=json.dumps(entry_command(spec, AUTO_FLAG)),  # a JSON list is a YAML flow sequence
        env=json.dumps(env),
        port=port,
    )


def _xpk(spec: LaunchSpec) -> str:
    command = _shell_line(entry_command(spec, AUTO_FLAG))
    if spec.port:
        command = f"JAX_COORDINATOR_PORT={spec.port} {command}"
    if spec.workdir:
        command = f"cd {shlex.quote(spec.workdir)} && {command}"
    return _template("xpk.sh").substitute(
        tpu=spec.tpu,
        tpu_type=xpk_tpu_type(spec),
        hosts=spec.hosts,
        chips=chips_per_host(spec, "xpk"),
        cluster=shlex.quote(spec.cluster or ""),
        job_name=spec.job_name,
        image=shlex.quote(spec.image or ""),
        max_restarts=spec.max_restarts,
        command=_double_quoted(command),
    )


def _local(spec: LaunchSpec) -> str:
    lines = [f"{_shell_line(argv)} &\npids+=($!)" for argv in local_commands(spec)]
    if spec.workdir:
        lines.insert(0, f"cd {shlex.quote(spec.workdir)}")
    return _template("local.sh").substitute(hosts=spec.hosts, port=spec.port, commands="\n".join(lines))
