"""Evaluate the latest checkpoint of a run zero-shot, template by template; writes MODEL_DIR/eval/results.{json,md}.

  python scripts/eval.py --gin_file=gin/runs/demo.gin --model_dir=/tmp/demo
"""

from __future__ import annotations

import _cli

ARGS = _cli.parse_args(__doc__.splitlines()[0], default_gin_file="runs/demo.gin")
_cli.quiet_tensorflow()

from it_jax import launch  # noqa: E402

if __name__ == "__main__":
    launch.parse_config(ARGS.gin_file, ARGS.gin_bindings)
    run = launch.make_run_config()
    spec, params = launch.restore_params(run)
    print(launch.eval_run(run, params=params, spec=spec))
