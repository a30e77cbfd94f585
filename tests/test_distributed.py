"""Data-parallel training on Ray Train (tuning/distributed.py) on a tiny model."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from tuning.config import TrainConfig


def test_a_batch_that_does_not_split_over_the_workers_is_refused():
    with pytest.raises(ValueError, match="--grad-accum × --workers"):
        TrainConfig(batch_size=8, workers=3).validate()


def test_two_ray_train_workers_take_the_steps_one_process_takes(ray_session, tiny_dirs, tmp_path):
    from tuning.distributed import train_on_workers
    from tuning.train import train

    config = TrainConfig(task="mrpc", model=str(tiny_dirs["llama"]), prompt_length=4, num_prompts=2, steps=4,
                         batch_size=8, eval_every=2, train_examples=32, eval_examples=8, eval_batch_size=8,
                         max_input_length=64, init="random_uniform", dtype="float32", progress=False,
                         output_dir=str(tmp_path))
    single = train(config)
    two = train_on_workers(dataclasses.replace(config, workers=2), cpus_per_worker=0.5, storage=tmp_path / "ray")

    assert [h["step"] for h in two.history] == [1, 2, 3, 4]
    assert [h["loss"] for h in two.history] == pytest.approx([h["loss"] for h in single.history], rel=1e-5)
    assert [m["step"] for m in two.best_metrics] == [m["step"] for m in single.best_metrics]
    assert len(two.artifacts) == 2
    for a, b in zip(two.artifacts, single.artifacts()):
        assert a.config["seed"] == b.config["seed"] and a.config["workers"] == 2
        torch.testing.assert_close(a.prompt, b.prompt, atol=1e-5, rtol=1e-4)
    assert not torch.equal(two.artifacts[0].prompt, two.artifacts[1].prompt)
