"""Train a model on a mixture, then evaluate it zero-shot on the held-out cluster.

With no arguments: the embedded demo (gin/runs/demo.gin): a tiny T5 trained on the synthetic collection
without one cluster, on CPU, evaluated on that cluster. Re-running with the same --model_dir resumes.

  python scripts/train.py --gin_file=gin/runs/demo.gin --model_dir=/tmp/demo

On several hosts, run it on each with --coordinator_address=HOST0:PORT --num_processes=N --process_id=I
(or the matching environment variables). On SIGTERM (preemption) it saves a checkpoint of the current
step and exits 0; rerunning resumes.
"""

from __future__ import annotations

import _cli

ARGS = _cli.parse_args(__doc__.splitlines()[0], default_gin_file="runs/demo.gin", multi_process=True)
_cli.quiet_tensorflow()

import gin  # noqa: E402

from it_jax import launch  # noqa: E402


@gin.configurable("main")
def main(*, evaluate: bool = True) -> None:
    run = launch.make_run_config()
    launch.check_settings(run, evaluate=evaluate)  # the evaluation's settings too, before training
    state, trainer = launch.train_run(run)
    if evaluate:
        step = int(state.step)
        print(launch.eval_run(run, params=state.params, spec=trainer.spec, mesh=trainer.mesh, step=step))


if __name__ == "__main__":

    def run() -> None:
        launch.parse_config(ARGS.gin_file, ARGS.gin_bindings)
        main()

    _cli.run_resumable(run, ARGS)
