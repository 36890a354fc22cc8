"""One process of a two-process CPU training run for test_peers.py, started the way scripts/train.py starts.

`_cli.parse_args` makes it the supervisor of a copy of itself (the multi-process flags are given); the copy
writes its pid to MODEL_DIR/pid<PROCESS_ID> (for the test to kill it), trains the tiny T5 on its half of
each batch, saves every 2 steps, reports its progress to the supervisor and prints "step N".

  python peer_worker.py --model_dir=DIR --coordinator_address=127.0.0.1:PORT --num_processes=2 \
      --process_id=I [--heartbeat_timeout=S] [--initialization_timeout=S] [--steps=N]
"""

import os
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests")]
from it_jax.cli import common as _cli  # noqa: E402

ARGS = _cli.parse_args(
    __doc__.splitlines()[0],
    default_gin_file="unused",
    multi_process=True,
    add_arguments=lambda parser: parser.add_argument("--steps", type=int, default=10**6),
)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # as scripts/train.py sets it (_cli.quiet_tensorflow)

import jax  # noqa: E402

jax.config.update("jax_cpu_collectives_implementation", "gloo")

from tiny import TINY, make_batch  # noqa: E402

from it_jax import sharding  # noqa: E402
from it_jax.models import t5  # noqa: E402
from it_jax.models.spec import ModelSpec  # noqa: E402
from it_jax.train import optimizers, peers  # noqa: E402
from it_jax.train import trainer as trainer_lib  # noqa: E402
from it_jax.train.checkpoints import Checkpointer  # noqa: E402


def main() -> None:
    model_dir = pathlib.Path(ARGS.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / f"pid{jax.process_index()}").write_text(str(os.getpid()))
    schedule = optimizers.make_schedule(base_learning_rate=1e-2, warmup_steps=2, decay="constant")
    trainer = trainer_lib.Trainer(
        spec=ModelSpec.create(lambda rngs: t5.T5(TINY, rngs=rngs)),
        optimizer=optimizers.make_optimizer(schedule, name="adamw"),
        schedule=schedule,
        mesh=sharding.create_mesh(data=2, fsdp=2),
    )
    checkpointer = Checkpointer(model_dir / "checkpoints", save_every=2, max_to_keep=None)
    state = trainer.init(seed=0)
    share = 8 // jax.process_count()
    rows = slice(jax.process_index() * share, (jax.process_index() + 1) * share)
    for step in range(1, ARGS.steps + 1):
        batch = {name: value[rows] for name, value in make_batch(step).items()}
        state, stats = trainer.step(state, trainer.to_global(batch))
        loss = float(stats["nll_sum"] / stats["tokens"])
        checkpointer.save(step, state, {}, data_position=step)
        checkpointer.raise_if_save_failed()  # also notes a save that has committed since
        peers.report_progress(step=step, saved_step=checkpointer.last_committed)
        print(f"step {step} loss {loss:.4f}", flush=True)
    checkpointer.close()


if __name__ == "__main__":
    _cli.run_resumable(main, ARGS)
