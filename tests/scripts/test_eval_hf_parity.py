"""scripts/eval.py on a Hugging Face import scores each answer option exactly as transformers does.

A tiny random T5 and Llama (transformers, float32) with the T5 SentencePiece vocabulary are saved as Hugging
Face directories, converted with scripts/convert_checkpoint.py --from_hf and evaluated by scripts/eval.py on a
small registered classification task; every option score in the predictions file is then recomputed with
transformers on the same prompt text.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
seqio = pytest.importorskip("seqio")

REPO = pathlib.Path(__file__).resolve().parents[2]
TASK = "hfparity_color"
VOCAB_SIZE = 32128  # 32,000 SentencePiece pieces + 100 sentinels, padded (T5's)

TASK_MODULE = textwrap.dedent(
    '''
    from it_jax.data import tasks

    ANIMALS = ["cat", "dog", "horse", "sparrow", "whale", "ant"]
    COLORS = ["red", "green", "blue"]


    def _examples(split):
        for i, animal in enumerate(ANIMALS):
            yield {"animal": animal, "n": i, "label": i % 3}


    def register(context):
        tasks.register_task(
            "hfparity_color",
            source=_examples,
            templates=[("What color is the {animal} number {n}?\\n{options_}", "{answer}")],
            cluster="test_hfparity",
            preprocessor=lambda ex: {**ex, "answer": COLORS[ex["label"]]},
            options=COLORS,
            context=context,
        )
    '''
)


def _build(name: str) -> "transformers.PreTrainedModel":
    torch.manual_seed(0)
    if name == "t5":
        config = transformers.T5Config(
            vocab_size=VOCAB_SIZE, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
            feed_forward_proj="gated-gelu", tie_word_embeddings=False, dropout_rate=0.0, eos_token_id=1,
            decoder_start_token_id=0, pad_token_id=0,
        )
        model = transformers.T5ForConditionalGeneration(config)
        model.lm_head.weight = torch.nn.Parameter(torch.randn(VOCAB_SIZE, 32) * 0.3)
    else:
        config = transformers.LlamaConfig(
            vocab_size=VOCAB_SIZE, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, initializer_range=0.1, bos_token_id=2, eos_token_id=1, pad_token_id=0,
            rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
        )
        model = transformers.LlamaForCausalLM(config)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim == 1:
                parameter.add_(0.2 * torch.randn_like(parameter))
    return model.eval()


def _env(tmp_path) -> dict:
    env = {**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), str(tmp_path), os.environ.get("PYTHONPATH")]))
    for var in ("IT_JAX_COORDINATOR_ADDRESS", "JAX_COORDINATOR_ADDRESS", "IT_JAX_NUM_PROCESSES", "IT_JAX_PROCESS_ID"):
        env.pop(var, None)
    return env


def _run(args, env, cwd):
    result = subprocess.run(
        [sys.executable, *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _log_prob(logits: "torch.Tensor", labels: list[int]) -> float:
    """Summed log-probability of `labels` under `logits` [len(labels), vocab] (positions aligned)."""
    log_probs = torch.log_softmax(logits.double(), dim=-1)
    return float(sum(log_probs[i, t] for i, t in enumerate(labels)))


def _hf_score(model, vocab, inputs: str, option: str) -> float:
    eos = 1
    with torch.no_grad():
        if model.config.is_encoder_decoder:
            encoder_ids = list(vocab.encode(inputs)) + [eos]
            labels = list(vocab.encode(option)) + [eos]
            decoder_ids = [0] + labels[:-1]
            logits = model(
                input_ids=torch.tensor([encoder_ids]), decoder_input_ids=torch.tensor([decoder_ids])
            ).logits[0]
            return _log_prob(logits, labels)
        prompt = [model.config.bos_token_id] + list(vocab.encode(inputs))
        labels = list(vocab.encode(option)) + [eos]
        sequence = prompt + labels
        logits = model(input_ids=torch.tensor([sequence])).logits[0]
        # Position i predicts token i + 1: the labels are predicted from len(prompt) - 1 onwards.
        return _log_prob(logits[len(prompt) - 1 : len(sequence) - 1], labels)


@pytest.mark.parametrize("name", ["t5", "llama"])
def test_eval_option_scores_match_transformers(name, shared_data, tmp_path):
    spiece = shared_data / "tokenizers" / "t5" / "spiece.model"
    if not spiece.is_file():
        pytest.skip(f"{spiece} not found")
    model = _build(name)
    hf_dir = tmp_path / "hf"
    model.save_pretrained(hf_dir, safe_serialization=True)
    shutil.copyfile(spiece, hf_dir / ("spiece.model" if name == "t5" else "tokenizer.model"))
    (tmp_path / "hfparity_tasks.py").write_text(TASK_MODULE)
    env = _env(tmp_path)

    converted = tmp_path / "converted"
    _run([REPO / "scripts" / "convert_checkpoint.py", "--from_hf", hf_dir, "--out", converted], env, tmp_path)
    recorded = json.loads((converted / "model.json").read_text())["layout"]
    if name == "t5":
        assert recorded == {"architecture": "encoder_decoder", "start_id": 0, "inputs_eos": True}
    else:
        assert recorded == {"architecture": "decoder_only", "start_id": 2, "inputs_eos": False}

    out = tmp_path / "out"
    _run(
        [
            REPO / "scripts" / "eval.py", "--checkpoint", converted, "--tasks", TASK, "--task_module", "hfparity_tasks",
            "--max_examples", 6, "--batch_size", 4, "--output_dir", out,
        ],
        env,
        tmp_path,
    )
    records = [json.loads(line) for line in (out / "predictions" / f"{TASK}__zs_opt__t0.jsonl").read_text().splitlines()]
    assert len(records) == 6
    vocab = seqio.SentencePieceVocabulary(str(spiece), extra_ids=100)
    for record in records:
        assert record["options"] == ["red", "green", "blue"]
        expected = [_hf_score(model, vocab, record["inputs"], option) for option in record["options"]]
        assert len(set(np.round(expected, 3))) == 3  # distinct scores: the argmax check means something
        np.testing.assert_allclose(record["option_scores"], expected, atol=1e-3, rtol=1e-4)
        assert record["prediction"] == record["options"][int(np.argmax(expected))], (record, expected)
    results = json.loads((out / "results.json").read_text())
    assert results  # written by the single process
