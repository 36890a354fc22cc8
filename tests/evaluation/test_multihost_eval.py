"""scripts/eval.py over two jax.distributed processes (127.0.0.1, one CPU device each) reports exactly what
one process does: the same results.json and predictions files, for a rank-classification and a generation
task; only process 0 writes."""

import json
import os
import pathlib
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from it_jax.convert import pretrained, tree
from it_jax.models import t5

REPO = pathlib.Path(__file__).resolve().parents[2]
RANK_TASK, GEN_TASK = "mheval_rank", "mheval_gen"

TASK_MODULE = textwrap.dedent(
    '''
    from it_jax.data import tasks

    WORDS = ["cat", "dog", "horse", "sparrow", "whale", "ant", "owl"]
    SIZES = ["small", "large"]


    def _examples(split):
        for i, word in enumerate(WORDS):
            yield {"word": word, "n": i, "label": i % 2}


    def register(context):
        tasks.register_task(
            "mheval_rank",
            source=_examples,
            templates=[("Is the {word} number {n} small or large?\\n{options_}", "{answer}"),
                       ("{word} ({n}): size?\\n{options_}", "{answer}")],
            cluster="test_mheval",
            preprocessor=lambda ex: {**ex, "answer": SIZES[ex["label"]]},
            options=SIZES,
            context=context,
        )
        tasks.register_task(
            "mheval_gen",
            source=_examples,
            templates=[("Spell the word {word} backwards.", "{word}")],
            cluster="test_mheval",
            context=context,
        )
    '''
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def tiny_pretrained(shared_data, tmp_path) -> pathlib.Path:
    spiece = shared_data / "tokenizers" / "t5" / "spiece.model"
    if not spiece.is_file():
        pytest.skip(f"{spiece} not found")
    config = t5.T5Config(
        vocab_size=32128, d_model=32, d_ff=64, d_kv=8, num_heads=2, num_encoder_layers=1, num_decoder_layers=1
    )
    rng = np.random.default_rng(0)
    flat = {
        path: (rng.normal(0.0, 0.3, leaf.shape) + (1.0 if path[-1] == "scale" else 0.0)).astype(leaf.dtype)
        for path, leaf in tree.expected_params(config).items()
    }
    return pretrained.save_pretrained(
        tmp_path / "model", config=config, params=tree.unflatten(flat), vocabulary_path=spiece, extra_ids=100
    )


def _env(tmp_path) -> dict:
    env = {**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), str(tmp_path), os.environ.get("PYTHONPATH")]))
    for names in (("IT_JAX_COORDINATOR_ADDRESS", "JAX_COORDINATOR_ADDRESS"), ("IT_JAX_NUM_PROCESSES", "JAX_NUM_PROCESSES"),
                  ("IT_JAX_PROCESS_ID", "JAX_PROCESS_ID")):
        for name in names:
            env.pop(name, None)
    return env


def _eval(model_dir, out, tmp_path, *extra):
    args = [
        sys.executable, str(REPO / "scripts" / "eval.py"), "--checkpoint", str(model_dir),
        "--tasks", f"{RANK_TASK},{GEN_TASK}", "--task_module", "mheval_tasks", "--max_examples", "5",
        "--batch_size", "4", "--inputs_length", "32", "--targets_length", "6", "--output_dir", str(out), *extra,
    ]
    return subprocess.Popen(
        args, env=_env(tmp_path), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _files(directory: pathlib.Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): p.read_text() for p in sorted(directory.rglob("*")) if p.is_file()}


def _comparable(results_json: str) -> dict:
    results = json.loads(results_json)
    results.pop("created", None)  # a timestamp, if recorded
    return results


def test_two_process_eval_matches_one_process_and_only_process_0_writes(tiny_pretrained, tmp_path):
    (tmp_path / "mheval_tasks.py").write_text(TASK_MODULE)
    port = _free_port()
    multi = [
        _eval(
            tiny_pretrained, tmp_path / f"multi_{i}", tmp_path,
            "--coordinator_address", f"127.0.0.1:{port}", "--num_processes", "2", "--process_id", str(i),
        )
        for i in range(2)
    ]
    single = _eval(tiny_pretrained, tmp_path / "single", tmp_path)
    outputs = [p.communicate(timeout=240)[0] for p in (*multi, single)]
    assert [p.returncode for p in (*multi, single)] == [0, 0, 0], "\n-----\n".join(o[-3000:] for o in outputs)

    assert not (tmp_path / "multi_1").exists(), _files(tmp_path / "multi_1")
    a, b = _files(tmp_path / "multi_0"), _files(tmp_path / "single")
    assert sorted(a) == sorted(b)
    expected = {f"predictions/{RANK_TASK}__zs_opt__t0.jsonl", f"predictions/{RANK_TASK}__zs_opt__t1.jsonl",
                f"predictions/{GEN_TASK}__zs_opt__t0.jsonl", "results.json", "results.md"}
    assert expected <= set(a), sorted(a)
    for name in a:
        if name.startswith("predictions/"):
            multi_records, single_records = ([json.loads(line) for line in f[name].splitlines()] for f in (a, b))
            # Scores agree to float32 rounding (each process scores a smaller batch: other kernel blocking);
            # everything else, predictions included, is identical.
            for m, s in zip(multi_records, single_records, strict=True):
                np.testing.assert_allclose(m.pop("option_scores", []), s.pop("option_scores", []), rtol=1e-5, atol=1e-4)
                assert m == s, name
            assert len(a[name].splitlines()) == 5, name
    ranked = [json.loads(line) for line in a[f"predictions/{RANK_TASK}__zs_opt__t0.jsonl"].splitlines()]
    assert all(len(r["option_scores"]) == 2 for r in ranked)
    assert _comparable(a["results.json"]) == _comparable(b["results.json"])
