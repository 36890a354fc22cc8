"""One process of a multi-process CPU training run, launched by test_distributed.py.

Every process builds the same deterministic global batches and feeds the rows of its share; process 0
writes `metrics.jsonl`. On a preemption notice (SIGTERM to any process) all stop after the same step, save it
and exit 0. Run: python multihost_worker.py MODEL_DIR NUM_PROCESSES PROCESS_ID PORT STEPS
"""

import pathlib
import sys

import jax

jax.config.update("jax_cpu_collectives_implementation", "gloo")

from it_jax import sharding  # noqa: E402
from it_jax.models import t5  # noqa: E402
from it_jax.models.spec import ModelSpec  # noqa: E402
from it_jax.train import distributed, optimizers, preemption  # noqa: E402
from it_jax.train import trainer as trainer_lib  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).parents[1]))
from tiny import TINY, make_batch  # noqa: E402


def main(model_dir: str, num_processes: int, process_id: int, port: int, steps: int) -> None:
    distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=num_processes, process_id=process_id)
    assert jax.process_count() == num_processes and jax.device_count() == 4, (jax.process_count(), jax.devices())
    schedule = optimizers.make_schedule(base_learning_rate=1e-2, warmup_steps=2, decay="constant")
    trainer = trainer_lib.Trainer(
        spec=ModelSpec.create(lambda rngs: t5.T5(TINY, rngs=rngs)),
        optimizer=optimizers.make_optimizer(schedule, name="adamw"),
        schedule=schedule,
        mesh=sharding.create_mesh(data=2, fsdp=2),
    )

    def batches(position):
        share = 8 // jax.process_count()
        rows = slice(jax.process_index() * share, (jax.process_index() + 1) * share)
        while True:
            yield {name: value[rows] for name, value in make_batch(position).items()}
            position += 1

    try:
        trainer_lib.train(
            trainer=trainer, batches=batches, model_dir=model_dir, num_steps=steps, save_every=steps, log_every=1,
            tensorboard=False,
        )
    except preemption.Preempted as stopped:
        print(f"Preempted at step {stopped.step}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], *map(int, sys.argv[2:]))
