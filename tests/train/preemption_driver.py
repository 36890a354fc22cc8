"""A small training run for test_preemption.py: the toy model on synthetic batches, handling preemption as
scripts/train.py does (a checkpoint of the current step, then exit 0). Run: python preemption_driver.py
MODEL_DIR NUM_STEPS
"""

import pathlib
import sys
import time

import jax

from it_jax import sharding
from it_jax.models.spec import ModelSpec
from it_jax.train import optimizers, preemption
from it_jax.train import trainer as trainer_lib

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from conftest import StackedMlpLM, _lm_batch  # noqa: E402


def main(model_dir: str, num_steps: int) -> None:
    schedule = optimizers.make_schedule(base_learning_rate=1e-2, warmup_steps=2, decay="constant")
    trainer = trainer_lib.Trainer(
        spec=ModelSpec.create(lambda rngs: StackedMlpLM(rngs=rngs)),
        optimizer=optimizers.make_optimizer(schedule, name="adamw"),
        schedule=schedule,
        mesh=sharding.create_mesh(devices=jax.devices()[:1]),
    )

    def batches(position):
        while True:
            time.sleep(0.02)
            yield _lm_batch(position)
            position += 1

    try:
        trainer_lib.train(
            trainer=trainer, batches=batches, model_dir=model_dir, num_steps=num_steps, save_every=10**9,
            log_every=1, tensorboard=False,
        )
    except preemption.Preempted as stopped:
        print(f"Preempted: saved step {stopped.step}", flush=True)
        raise SystemExit(0)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
