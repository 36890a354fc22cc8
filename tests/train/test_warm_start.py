import chat_runs
import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from it_jax import sharding
from it_jax.convert import tree
from it_jax.evaluation import loading
from it_jax.models import lora
from it_jax.models.spec import ModelSpec
from it_jax.train import trainer as trainer_lib
from it_jax.train import warm_start


def _trainer(spec, optimizer, schedule, mesh=None):
    mesh = mesh or sharding.create_mesh(devices=jax.devices()[:2], fsdp=2)
    return trainer_lib.Trainer(spec=spec, optimizer=optimizer, schedule=schedule, mesh=mesh)


def test_matching_parameters_are_loaded_and_a_resized_head_keeps_its_init(
    stacked_spec, stacked_lm, optimizer, schedule
):
    pretrained = ModelSpec.create(lambda rngs: stacked_lm(vocab=64, rngs=rngs)).init_params(seed=7)
    fresh = _trainer(stacked_spec, optimizer, schedule).init(seed=0).params
    merged, report = warm_start.load_matching_params(pretrained, params=fresh)
    assert report.loaded == ("w_in", "w_out")
    assert set(report.skipped) == {"embedding", "head"}
    assert "shape (128, 64) in the source, (128, 128) here" in report.skipped["head"]
    np.testing.assert_array_equal(merged["w_in"], pretrained["w_in"])
    np.testing.assert_array_equal(merged["head"], fresh["head"])
    assert merged["w_in"].sharding == fresh["w_in"].sharding


def test_init_from_a_model_directory(tmp_path, stacked_spec, stacked_lm, optimizer, schedule, make_lm_batch):
    source = _trainer(stacked_spec, optimizer, schedule)

    def batches(position):
        while True:
            yield make_lm_batch(position)

    pretrained = trainer_lib.train(
        trainer=source, batches=batches, model_dir=tmp_path / "pretrained", num_steps=1, tensorboard=False
    ).params

    class Wider(stacked_lm):
        def __init__(self, *, rngs: nnx.Rngs):
            super().__init__(rngs=rngs)
            self.extra = nnx.Param(jax.numpy.ones((3,)))

    wider = ModelSpec.create(lambda rngs: Wider(rngs=rngs))
    target = _trainer(wider, optimizer, schedule, mesh=sharding.create_mesh(devices=jax.devices()[:1]))
    state = trainer_lib.train(
        trainer=target,
        batches=batches,
        model_dir=tmp_path / "finetune",
        num_steps=0,
        init_from=str(tmp_path / "pretrained"),
        tensorboard=False,
    )
    for name in ("embedding", "w_in", "w_out", "head"):
        np.testing.assert_array_equal(state.params[name], pretrained[name])
    np.testing.assert_array_equal(state.params["extra"], np.ones(3))
    _, report = warm_start.load_matching_params(tmp_path / "pretrained", params=state.params)
    assert report.skipped == {"extra": "not in the source"} and "step 1" in report.summary()


def test_init_from_a_converted_pretrained_directory(tmp_path, stacked_spec, stacked_lm, optimizer, schedule):
    pretrained = ModelSpec.create(lambda rngs: stacked_lm(vocab=64, rngs=rngs)).init_params(seed=3)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(tmp_path / "pretrained" / warm_start.PRETRAINED_PARAMS_DIR, pretrained)
    checkpointer.wait_until_finished()
    fresh = _trainer(stacked_spec, optimizer, schedule).init(seed=0).params
    merged, report = warm_start.load_matching_params(tmp_path / "pretrained", params=fresh)
    assert report.loaded == ("w_in", "w_out") and set(report.skipped) == {"embedding", "head"}
    np.testing.assert_array_equal(merged["w_out"], pretrained["w_out"])
    np.testing.assert_array_equal(merged["embedding"], fresh["embedding"])


def test_a_lora_model_loads_its_base_and_reports_the_adapters_as_new():
    config = lora.LoraConfig(rank=2, targets=("q", "v"))
    fresh = loading.model_spec(chat_runs.CONFIG, config).init_params(0)
    base = chat_runs.random_params(chat_runs.CONFIG, seed=5)
    merged, report = warm_start.load_matching_params(base, params=fresh)
    assert len(report.new_adapters) == 2 * 2 * 2 and set(report.skipped) == set(report.new_adapters)
    summary = report.summary()
    assert "newly initialized: 8 LoRA adapter parameters" in summary and "kept fresh" not in summary
    flat = tree.flatten(merged)
    for path, value in tree.flatten(base).items():
        np.testing.assert_array_equal(flat[path], value, err_msg=tree.path_name(path))
