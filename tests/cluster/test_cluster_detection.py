"""`--coordinator_address=auto` hands the run's shape to JAX's cluster detection, and what JAX detects in the
environment each task of the rendered SLURM script (or pod of the JobSet) gets is the run the file describes:
one coordinator for all, `hosts` processes, ids 0 to hosts - 1, all of a node's GPUs. Nothing connects: the
tests call the cluster classes of jax 0.10.2 (`jax._src.clusters`), not `jax.distributed.initialize`."""

import re

import pytest
from jax._src import clusters, xla_bridge
from jax._src.clusters import cloud_tpu_cluster

from it_jax import errors
from it_jax.cluster import launch_files as cluster
from it_jax.train import distributed

yaml = pytest.importorskip("yaml")

# Variables through which JAX could detect another cluster (or an explicit setting) than the one faked.
OTHER_CLUSTERS = (
    "OMPI_MCA_orte_hnp_uri",
    "PMIX_SERVER_URI2",
    "KUBERNETES_SERVICE_HOST",
    "JAX_COORDINATOR_ADDRESS",
    "JAX_COORDINATOR_PORT",
    "JAX_LOCAL_DEVICE_IDS",
    "TPU_WORKER_HOSTNAMES",
    "TPU_PROCESS_ADDRESSES",
    "MEGASCALE_COORDINATOR_ADDRESS",
)
SLURM_VARS = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID")


@pytest.fixture
def clean_env(monkeypatch):
    for name in (*OTHER_CLUSTERS, *SLURM_VARS, *[n for names in distributed.ENV_VARS.values() for n in names]):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _detect(local_device_ids=None):
    """What `jax.distributed.initialize()` would take from the environment, as it calls the detection."""
    return clusters.ClusterEnv.auto_detect_unset_distributed_params(None, None, None, local_device_ids, None, 60)


def _slurm_tasks(text: str) -> tuple[dict[str, str], int]:
    """The variables the SLURM script exports, and the number of tasks its srun starts."""
    exports = dict(re.findall(r"^export (\w+)=(\S+)$", text, re.MULTILINE))
    srun = dict(re.findall(r"--(nodes|ntasks-per-node)=(\d+)", text.split("\nsrun ", 1)[1]))
    return exports, int(srun["nodes"]) * int(srun["ntasks-per-node"])


@pytest.mark.parametrize("port", [None, 23456])
def test_slurm_tasks_of_the_rendered_script_detect_one_run(clean_env, port):
    spec = cluster.LaunchSpec(model_dir="/shared/run", hosts=3, chips_per_host=4, port=port)
    exports, tasks = _slurm_tasks(cluster.render("slurm", spec))
    assert tasks == 3
    for name, value in exports.items():
        clean_env.setenv(name, value)
    detected = []
    for process_id in range(tasks):  # what srun gives task `process_id` (one per node: local id 0)
        clean_env.setenv("SLURM_JOB_ID", "4242")
        clean_env.setenv("SLURM_STEP_NODELIST", "gpu[017-019]")
        clean_env.setenv("SLURM_NTASKS", str(tasks))
        clean_env.setenv("SLURM_PROCID", str(process_id))
        clean_env.setenv("SLURM_LOCALID", "0")
        assert clusters.SlurmCluster.is_env_present()
        # jax.distributed reads JAX_LOCAL_DEVICE_IDS before detecting; detection then leaves it alone.
        local_device_ids = [int(i) for i in exports["JAX_LOCAL_DEVICE_IDS"].split(",")]
        detected.append(_detect(local_device_ids))
    coordinators = {coordinator for coordinator, *_ in detected}
    assert len(coordinators) == 1
    host, _, chosen_port = coordinators.pop().rpartition(":")
    assert host == "gpu017" and (port is None or chosen_port == str(port))
    assert [(count, process_id) for _, count, process_id, _ in detected] == [(3, 0), (3, 1), (3, 2)]
    assert all(ids == [0, 1, 2, 3] for *_, ids in detected)  # every GPU of the node, not GPU SLURM_LOCALID


def test_without_the_scripts_device_ids_jax_would_give_a_task_one_gpu(clean_env):
    """Why the SLURM script exports JAX_LOCAL_DEVICE_IDS: one task per node otherwise sees GPU 0 only."""
    for name, value in zip(SLURM_VARS, ("7", "node1,node2", "2", "1", "0")):
        clean_env.setenv(name, value)
    assert _detect() == ("node1:61447", 2, 1, [0])  # port 65535 - 4095 + job id % 4096


def test_gke_pods_of_the_rendered_jobset_detect_one_run(clean_env):
    spec = cluster.LaunchSpec(model_dir="gs://b/run", hosts=4, image="img", topology="2x2x4", port=9000)
    manifest = yaml.safe_load(cluster.render("gke", spec))
    job = manifest["spec"]["replicatedJobs"][0]
    pod = job["template"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    # GKE names the pods of the JobSet's Indexed Job <jobset>-<replicated job>-<job index>-<pod index> in the
    # headless service `subdomain`, and gives each TPU_WORKER_ID (its index) and all their names.
    subdomain = manifest["spec"]["network"]["subdomain"]
    assert pod["subdomain"] == subdomain
    names = [f"{manifest['metadata']['name']}-{job['name']}-0-{i}.{subdomain}" for i in range(spec.hosts)]
    clean_env.setattr(cloud_tpu_cluster, "running_in_cloud_tpu_vm", True)
    clean_env.setattr(cloud_tpu_cluster, "get_tpu_env_value_from_metadata", lambda key: None)  # no metadata server
    clean_env.setattr(cloud_tpu_cluster.BaseTpuCluster, "wait_for_coordinator", classmethod(lambda *args: None))
    for variable in container["env"]:
        clean_env.setenv(variable["name"], variable["value"])
    clean_env.setenv("TPU_WORKER_HOSTNAMES", ",".join(names))
    detected = []
    for index in range(job["template"]["spec"]["completions"]):
        clean_env.setenv("TPU_WORKER_ID", str(index))
        assert cloud_tpu_cluster.GkeTpuCluster.is_env_present()
        detected.append(_detect())
    port = container["ports"][0]["containerPort"]
    assert [d[:3] for d in detected] == [(f"{names[0]}:{port}", 4, i) for i in range(4)]


def test_auto_passes_only_the_timeouts_to_jax(clean_env):
    import jax

    calls = []
    clean_env.setattr(jax.distributed, "initialize", lambda **kwargs: calls.append(kwargs))
    assert distributed.initialize(coordinator_address="auto", heartbeat_timeout=7)
    assert calls == [{"initialization_timeout": 60, "heartbeat_timeout_seconds": 7, "shutdown_timeout_seconds": 300}]


def test_auto_without_a_cluster_says_so(clean_env):
    """The real `jax.distributed.initialize` with nothing to detect fails before connecting anywhere."""
    clean_env.setattr(xla_bridge, "backends_are_initialized", lambda: False)
    clean_env.setattr(cloud_tpu_cluster, "running_in_cloud_tpu_vm", False)
    with pytest.raises(errors.ConfigError, match="coordinator_address 'auto' found no cluster .* SLURM's srun"):
        distributed.initialize(coordinator_address="auto")
