import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec

from it_jax import sharding
from it_jax.train import trainer as trainer_lib
from it_jax.train.checkpoints import Checkpointer, checkpoint_dir
from it_jax.train.state import TrainState


def test_save_restore_round_trip_is_exact(tmp_path, spec, optimizer, schedule, make_batch):
    mesh = sharding.create_mesh(data=2, fsdp=2, tensor=2)
    trainer = trainer_lib.Trainer(spec=spec, optimizer=optimizer, schedule=schedule, mesh=mesh)
    state = trainer.init(seed=3)
    state, _ = trainer.step(state, trainer.to_global(make_batch(0)))
    checkpointer = Checkpointer(tmp_path, save_every=1)
    checkpointer.save(1, state, {"note": "x"}, data_position=1)
    checkpointer.close()

    restored_from = Checkpointer(tmp_path)
    assert restored_from.latest_step() == 1
    restored = restored_from.restore(trainer.abstract_state())
    assert restored_from.metadata() == {"note": "x"}
    assert restored_from.data_position() == 1
    restored_from.close()
    for a, b in zip(jax.tree.leaves(state.as_dict()), jax.tree.leaves(restored.as_dict())):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        assert a.sharding == b.sharding


def test_restore_onto_a_different_mesh(tmp_path, stacked_spec, optimizer, schedule):
    saved_on = trainer_lib.Trainer(
        spec=stacked_spec, optimizer=optimizer, schedule=schedule, mesh=sharding.create_mesh(fsdp=8)
    )
    state = saved_on.init(seed=1)
    kernel = state.params["w_in"]
    assert kernel.sharding.spec == PartitionSpec(None, "fsdp", "tensor") and len(kernel.sharding.device_set) == 8
    checkpointer = Checkpointer(tmp_path, save_every=1)
    checkpointer.save(1, state, {}, data_position=1)
    checkpointer.close()

    two_devices = sharding.create_mesh(data=2, devices=jax.devices()[:2])
    restored_on = trainer_lib.Trainer(spec=stacked_spec, optimizer=optimizer, schedule=schedule, mesh=two_devices)
    checkpointer = Checkpointer(tmp_path)
    restored = checkpointer.restore(restored_on.abstract_state())
    checkpointer.close()
    for a, b in zip(jax.tree.leaves(state.as_dict()), jax.tree.leaves(restored.as_dict())):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        assert b.sharding.mesh.devices.size == 2
    # Parameters are replicated over `data`: each of the two devices holds a whole copy.
    assert {s.data.shape for s in restored.params["w_in"].addressable_shards} == {kernel.shape}


def _tiny_state(value: float) -> TrainState:
    return TrainState(step=jnp.int32(0), params={"w": jnp.full((2,), value)}, opt_state=())


def test_keeps_the_latest_and_the_best_by_an_eval_metric(tmp_path):
    checkpointer = Checkpointer(tmp_path, save_every=1, max_to_keep=1, keep_best=1, best_metric="eval/loss")
    for step, loss in [(1, 0.9), (2, 0.5), (3, 0.7), (4, None)]:
        metrics = None if loss is None else {"eval/loss": loss, "eval/accuracy": 1 - loss}
        checkpointer.save(step, _tiny_state(step), {}, data_position=step, metrics=metrics)
        checkpointer.manager.wait_until_finished()
    assert checkpointer.all_steps() == [2, 4]
    checkpointer.close()

    by_accuracy = Checkpointer(
        tmp_path / "max", save_every=1, max_to_keep=1, keep_best=2, best_metric="acc", best_mode="max"
    )
    for step, accuracy in [(1, 0.2), (2, 0.6), (3, 0.4), (4, 0.1)]:
        by_accuracy.save(step, _tiny_state(step), {}, data_position=step, metrics={"acc": accuracy})
        by_accuracy.manager.wait_until_finished()
    assert by_accuracy.all_steps() == [2, 3, 4]
    by_accuracy.close()


def test_checkpoints_without_an_input_position_assume_one_batch_per_step(tmp_path):
    checkpointer = Checkpointer(tmp_path, save_every=1)
    checkpointer.save(5, _tiny_state(1.0), {}, data_position=5)
    checkpointer.close()
    for item in (tmp_path / "5" / "data").iterdir():
        item.unlink()
    (tmp_path / "5" / "data").rmdir()
    assert Checkpointer(tmp_path).data_position(5) == 5


def test_checkpoint_dir_accepts_a_model_dir_or_its_checkpoints(tmp_path):
    checkpointer = Checkpointer(tmp_path / "run" / "checkpoints", save_every=1)
    checkpointer.save(1, _tiny_state(1.0), {}, data_position=1)
    checkpointer.close()
    assert checkpoint_dir(tmp_path / "run") == tmp_path / "run" / "checkpoints"
    assert checkpoint_dir(tmp_path / "run" / "checkpoints") == tmp_path / "run" / "checkpoints"
