"""The task context: task modules loaded by name or path and registered with the run's settings, and a run
that refuses tasks tokenizing with another vocabulary than its own."""

import pytest
import seqio

from it_jax import errors
from it_jax.data import context as context_lib
from it_jax.data import mixing, tasks

MODULE = '''
from it_jax.data import mixing, tasks


def register(context):
    tasks.register_task(
        "ctx_module_task", source=lambda split: iter([{"x": "a", "answer": "b"}] * 3),
        templates=[("{x}", "{answer}")], cluster="ctx", context=context,
    )
    mixing.register_mixture("ctx_module_mix", ["ctx_module_task"], rate=context.rate(cap=2))
'''


def test_a_py_task_module_registers_with_the_contexts_vocabulary_and_rates(tmp_path, shared_data):
    path = tmp_path / "ctx_tasks.py"
    path.write_text(MODULE)
    spm = seqio.SentencePieceVocabulary(str(shared_data / "tokenizers" / "t5" / "spiece.model"))
    (module,) = context_lib.load_task_modules([str(path)], context_lib.TaskContext(spm, cap=2))
    assert module.__file__ == str(path)
    task = seqio.get_mixture_or_task("ctx_module_task")
    assert task.output_features["targets"].vocabulary == spm
    assert seqio.get_mixture_or_task("ctx_module_mix").get_rate(task) == 2  # min(3 examples, cap 2)
    context_lib.check_vocabularies("ctx_module_mix", spm)
    with pytest.raises(errors.ConfigError, match="'ctx_module_task' tokenizes 'inputs' with SentencePieceVocabulary"):
        context_lib.check_vocabularies("ctx_module_mix", seqio.ByteVocabulary())


def test_a_task_registered_without_a_context_is_refused_by_a_run_with_another_vocabulary(shared_data):
    tasks.register_task(
        "ctx_bytes_task", source=lambda split: iter([{"x": "a", "answer": "b"}]), templates=[("{x}", "{answer}")],
        cluster="ctx",
    )
    mixing.register_mixture("ctx_bytes_mix", ["ctx_bytes_task"], rate=1.0)
    spm = seqio.SentencePieceVocabulary(str(shared_data / "tokenizers" / "t5" / "spiece.model"))
    with pytest.raises(errors.ConfigError, match=r"register_task\(\.\.\., context=context\)"):
        context_lib.check_vocabularies("ctx_bytes_mix", spm)


def test_module_labels_make_paths_absolute_and_keep_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert context_lib.module_label("my_tasks.py") == str(tmp_path / "my_tasks.py")
    assert context_lib.module_label("mixtures.synthetic") == "mixtures.synthetic"
