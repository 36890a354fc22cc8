import jax
import numpy as np

from it_jax import sharding
from it_jax.train import trainer as trainer_lib
from it_jax.train.checkpoints import Checkpointer


def test_save_restore_round_trip_is_exact(tmp_path, spec, optimizer, schedule, make_batch):
    mesh = sharding.create_mesh(data=2, fsdp=2, tensor=2)
    trainer = trainer_lib.Trainer(spec=spec, optimizer=optimizer, schedule=schedule, mesh=mesh)
    state = trainer.init(seed=3)
    state, _ = trainer.step(state, trainer.to_global(make_batch(0)))
    checkpointer = Checkpointer(tmp_path, save_every=1)
    checkpointer.save(1, state, {"note": "x"})
    checkpointer.close()

    restored_from = Checkpointer(tmp_path)
    assert restored_from.latest_step() == 1
    restored = restored_from.restore(trainer.abstract_state())
    assert restored_from.metadata() == {"note": "x"}
    restored_from.close()
    for a, b in zip(jax.tree.leaves(state.as_dict()), jax.tree.leaves(restored.as_dict())):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        assert a.sharding == b.sharding
