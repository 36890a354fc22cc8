"""Train a model on a mixture, then evaluate it zero-shot on the held-out cluster.

With no arguments: the embedded demo (runs/demo.gin, under it_jax/gin/): a tiny T5 trained on the synthetic collection
without one cluster, on CPU, evaluated on that cluster. Re-running with the same --model_dir resumes.
--print_config shows every gin binding and exits; --verbose shows TensorFlow's and seqio's logs.

  it-jax-train --gin_file=runs/demo.gin --model_dir=/tmp/demo   (or: python scripts/train.py ...)

On several hosts, run it on each with --coordinator_address=HOST0:PORT --num_processes=N --process_id=I
(or the matching environment variables). On SIGTERM (preemption) it saves a checkpoint of the current
step and exits 0; rerunning resumes.
"""

from __future__ import annotations

import gin

from it_jax.cli import common


@gin.configurable("main")
def train_and_evaluate(*, evaluate: bool = True) -> None:
    """Trains the gin-configured run, then (if `evaluate`) evaluates it as `eval_run` is configured."""
    from it_jax import launch

    run = launch.make_run_config()
    launch.check_settings(run, evaluate=evaluate)  # the evaluation's settings too, before training
    state, trainer = launch.train_run(run)
    if evaluate:
        step = int(state.step)
        # The training mixture marks each evaluated task seen or held out in the report's verdict.
        trained_on = gin.get_bindings(launch.train_run).get("mixture")
        markdown = launch.eval_run(
            run, params=state.params, spec=trainer.spec, mesh=trainer.mesh, step=step, trained_on=trained_on
        )
        print(markdown)


def main() -> None:
    """The `it-jax-train` command: flags first (signals, quiet logs), then gin, then the run."""
    args = common.parse_args(__doc__.splitlines()[0], default_gin_file="runs/demo.gin", multi_process=True)
    common.quiet_tensorflow()
    common.print_config(args)

    def run() -> None:
        from it_jax import launch

        launch.parse_config(args.gin_file, args.gin_bindings)
        train_and_evaluate()

    common.run_resumable(run, args)


if __name__ == "__main__":
    main()
