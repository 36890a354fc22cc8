"""Train a model on a mixture, then evaluate it zero-shot on the held-out cluster.

With no arguments: the embedded demo (gin/runs/demo.gin): a tiny T5 trained on the synthetic collection
without one cluster, on CPU, evaluated on that cluster. Re-running with the same --model_dir resumes.

  python scripts/train.py --gin_file=gin/runs/demo.gin --model_dir=/tmp/demo
"""

from __future__ import annotations

import _cli

ARGS = _cli.parse_args(__doc__.splitlines()[0], default_gin_file="runs/demo.gin")
_cli.quiet_tensorflow()

import gin  # noqa: E402

from it_jax import launch  # noqa: E402


@gin.configurable("main")
def main(*, evaluate: bool = True) -> None:
    run = launch.make_run_config()
    state, trainer = launch.train_run(run)
    if evaluate:
        print(launch.eval_run(run, params=state.params, spec=trainer.spec))


if __name__ == "__main__":
    launch.parse_config(ARGS.gin_file, ARGS.gin_bindings)
    try:
        main()
    except KeyboardInterrupt:
        print("\nInterrupted. Run the same command again to resume from the last checkpoint.", flush=True)
        raise SystemExit(130)
