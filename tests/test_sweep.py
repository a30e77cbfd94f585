"""Ray Tune sweeps on a tiny model: registration, retry, resume, the shared checkpoint, the CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tuning.artifact import PromptArtifact, load_prompt, save_prompt
from tuning.backbone import fingerprint
from tuning.fields import compose
from tuning.sweep.config import SweepConfig
from tuning.sweep.shared_weights import rebuild, share


def _config(tiny_dirs, tmp_path, **overrides) -> SweepConfig:
    values = dict(tasks="mrpc", model=str(tiny_dirs["llama"]), trials=2, num_prompts=2, top_n=3, steps=4,
                  batch_size=4, prompt_length=4, eval_every=2, train_examples=16, eval_examples=8,
                  eval_batch_size=8, max_input_length=64, storage=str(tmp_path / "runs"),
                  registry=str(tmp_path / "registry"), name="sweep")
    return compose(SweepConfig, **{**values, **overrides})  # flat, as the flags: model etc. land in .train


def _trial_dirs(experiment: Path) -> dict[str, Path]:
    return {p.name: p for p in experiment.iterdir() if (p / "params.json").exists()}


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines())


# ---- shared frozen checkpoint ---------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["llama", "t5"])
def test_shared_weights_rebuild_is_bit_identical_and_maps_the_store(ray_session, tiny_dirs, kind):
    from tuning.backbone import load_backbone

    original = load_backbone(str(tiny_dirs[kind]))
    ref = ray_session.put(share(original))
    shared = ray_session.get(ref)
    assert all(not a.flags.writeable for a in shared.arrays.values())  # views of the object store, no copy
    rebuilt = rebuild(shared)
    a, b = original.model.state_dict(), rebuilt.model.state_dict()
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype and torch.equal(a[name], b[name]), name
    assert fingerprint(rebuilt.model) == fingerprint(original.model) == rebuilt.fingerprint
    # The rebuilt tensors are the store's memory, and tied weights stay tied (stored once).
    first = next(iter(shared.arrays))
    assert dict(rebuilt.model.named_parameters())[first].data_ptr() == shared.arrays[first].ctypes.data
    emb = rebuilt.model.get_input_embeddings().weight
    assert rebuilt.model.get_output_embeddings().weight is emb or kind == "t5"
    ids = torch.tensor([[5, 6, 7, 8]])
    kwargs = {"decoder_input_ids": ids} if kind == "t5" else {}
    assert torch.equal(original.model(input_ids=ids, **kwargs).logits, rebuilt.model(input_ids=ids, **kwargs).logits)


# ---- a sweep end to end ---------------------------------------------------------------------------

def test_sweep_retries_a_failed_trial_registers_and_reports(ray_session, tiny_dirs, tiny_llama, tmp_path):
    from ensemble import PromptBank
    from tuning.sweep.job import run_sweep

    config = _config(tiny_dirs, tmp_path, max_failures=1)
    fault = tmp_path / "fail-once"  # one trial fails at its second evaluation; the retry must absorb it
    fault.touch()
    # A stale prompt of an earlier sweep, and one of another task: only the first is replaced.
    stale = save_prompt(PromptArtifact(torch.zeros(4, tiny_llama.embed_dim), "mrpc", tiny_llama.name,
                                       tiny_llama.fingerprint), config.registry_dir / "mrpc" / "old")
    other = save_prompt(PromptArtifact(torch.zeros(4, tiny_llama.embed_dim), "rte", tiny_llama.name,
                                       tiny_llama.fingerprint), config.registry_dir / "rte" / "keep")
    outcome = run_sweep(config, test_hooks={"fault_file": str(fault), "fault_step": 4})

    assert not fault.exists()
    paths = outcome.registered["mrpc"]
    assert len(paths) == 3 and not stale.exists() and other.exists()
    assert sorted((config.registry_dir / "mrpc").glob("*.safetensors")) == sorted(paths)
    grid = outcome.results["mrpc"]
    assert len(grid) == 2 and all(r.error is None for r in grid)
    best = max(r.metrics["best_score"] for r in grid)
    scores = []
    for path in paths:
        artifact = load_prompt(path, tiny_llama)  # refuses a prompt of another backbone
        assert artifact.task == "mrpc" and artifact.prompt.shape == (4, tiny_llama.embed_dim)
        assert artifact.config["num_prompts"] == 2 and artifact.config["steps"] == 4
        scores.append(artifact.metrics["average"])
    assert scores == sorted(scores, reverse=True) and scores[0] == pytest.approx(best)
    # Packed prompts are separate candidates with their own seeds.
    seeds = {load_prompt(p).config["seed"] for p in paths}
    assert len(seeds) == 3 and seeds <= {0, 1, 2, 3}
    # Each trial reports every packed prompt, checkpoints and logs TensorBoard events.
    experiment = config.experiment_dir / "mrpc"
    for trial in _trial_dirs(experiment).values():
        last = json.loads(trial.joinpath("result.json").read_text().splitlines()[-1])
        assert {"prompt_0/best_score", "prompt_1/best_score", "score", "best_score", "step"} <= set(last)
        assert last["step"] == 4 and last["finished"]
        assert list(trial.glob("events.out.tfevents.*")), "no TensorBoard events file"
        assert list(trial.glob("checkpoint_*/prompt_1.safetensors"))
    # The Serve side reads the registry as written.
    bank = PromptBank(tiny_llama, config.registry_dir)
    assert bank.tasks["mrpc"].n == 3 and not bank.refused
    html = outcome.report.read_text()
    assert outcome.report == config.experiment_dir / "report.html"
    assert html.count("data:image/png;base64,") == 2 and "mrpc-" in html


def test_a_killed_trial_resumes_from_its_checkpoint_and_ends_like_an_uninterrupted_one(ray_session, tiny_dirs, tmp_path):
    from tuning.sweep.job import run_sweep

    def sweep(name: str, hooks: dict | None = None):
        config = _config(tiny_dirs, tmp_path, name=name, registry=str(tmp_path / f"registry-{name}"), trials=1,
                         num_prompts=2, top_n=2, steps=6, eval_every=2, max_failures=1)
        return config, run_sweep(config, test_hooks=hooks)

    fault = tmp_path / "kill-once"  # SIGKILL of the trial's process at its second evaluation (step 4)
    fault.touch()
    killed_config, killed = sweep("killed", {"fault_file": str(fault), "fault_step": 4, "fault_kill": True})
    assert not fault.exists() and all(r.error is None for r in killed.results["mrpc"])
    (trial,) = _trial_dirs(killed_config.experiment_dir / "mrpc").values()
    steps = [json.loads(line)["step"] for line in trial.joinpath("result.json").read_text().splitlines()]
    assert steps == [2, 4, 6]  # the retry went on from the step-2 checkpoint (a restart would report 2 twice)

    _, whole = sweep("whole")
    for a, b in zip(killed.registered["mrpc"], whole.registered["mrpc"]):
        a, b = load_prompt(a), load_prompt(b)
        assert a.config["seed"] == b.config["seed"] and a.metrics == b.metrics
        assert torch.equal(a.prompt, b.prompt)


def test_an_interrupted_sweep_resumes_without_rerunning_finished_trials(ray_session, tiny_dirs, tmp_path):
    from tuning.sweep.job import run_sweep

    fault = tmp_path / "fail-once"
    # No retries: one trial fails at its second evaluation and the experiment ends with it errored.
    fault.touch()
    config = _config(tiny_dirs, tmp_path, num_prompts=1, top_n=2, max_failures=0)
    first = run_sweep(config, test_hooks={"fault_file": str(fault), "fault_step": 4})
    errored = [r for r in first.results["mrpc"] if r.error is not None]
    assert len(errored) == 1 and not fault.exists()
    experiment = config.experiment_dir / "mrpc"
    done = {name: _lines(d / "result.json") for name, d in _trial_dirs(experiment).items()
            if json.loads(d.joinpath("result.json").read_text().splitlines()[-1]).get("finished")}
    assert len(done) == 1
    from tuning.sweep.report import read_experiment
    assert sorted(t.status for t in read_experiment(experiment)) == ["complete", "error"]
    assert len(first.registered["mrpc"]) == 2  # the errored trial's checkpoint (step 2) still counts

    # Resume: the errored trial runs again from its checkpoint, the finished one is not rerun.
    resumed = run_sweep(_config(tiny_dirs, tmp_path, num_prompts=1, top_n=2, resume=True))
    assert all(r.error is None for r in resumed.results["mrpc"]) and len(resumed.results["mrpc"]) == 2
    dirs = _trial_dirs(experiment)
    assert len(dirs) == 2
    for name, lines in done.items():
        assert _lines(dirs[name] / "result.json") == lines
    assert all(r.metrics["finished"] and r.metrics["step"] == 4 for r in resumed.results["mrpc"])


def test_a_sweep_trial_on_two_ray_train_workers_registers_the_prompts_one_process_trains(ray_session, tiny_dirs, tmp_path):
    from tuning.sweep.job import run_sweep

    def sweep(name: str, workers: int):
        config = _config(tiny_dirs, tmp_path, name=name, registry=str(tmp_path / f"registry-{name}"), trials=1,
                         num_prompts=2, top_n=2, batch_size=8, workers=workers, dtype="float32",
                         init="random_uniform")
        return config, run_sweep(config)

    two_config, two = sweep("two", 2)
    (result,) = two.results["mrpc"]
    assert result.error is None and result.metrics["finished"] and result.metrics["step"] == 4
    (trial,) = _trial_dirs(two_config.experiment_dir / "mrpc").values()
    assert [json.loads(line)["step"] for line in trial.joinpath("result.json").read_text().splitlines()] == [2, 4]
    group = two_config.experiment_dir / "mrpc" / "ray-train" / result.metrics["trial_id"]
    assert Path(result.metrics["checkpoint_path"]).parent == group  # the group's checkpoints, beside the trial's

    _, one = sweep("one", 1)
    assert len(two.registered["mrpc"]) == len(one.registered["mrpc"]) == 2
    for a, b in zip(two.registered["mrpc"], one.registered["mrpc"]):
        a, b = load_prompt(a), load_prompt(b)
        assert a.config["seed"] == b.config["seed"] and (a.config["workers"], b.config["workers"]) == (2, 1)
        torch.testing.assert_close(a.prompt, b.prompt, atol=1e-5, rtol=1e-4)


def test_workers_that_do_not_divide_the_batch_are_refused_before_any_trial(tiny_dirs, tmp_path):
    from tuning.sweep.job import run_sweep

    with pytest.raises(ValueError, match="--workers 3 must divide every trial's batch size"):
        run_sweep(_config(tiny_dirs, tmp_path, batch_size=4, workers=3))


# ---- search space and CLI -------------------------------------------------------------------------

def test_paper_space_is_table_6_scaled():
    from ray.tune.search.sample import Categorical, Float

    from tuning.sweep import space

    ps = space.param_space(SweepConfig(search="paper", scale=1000, trials=8))
    assert set(ps) == {*space.HYPERPARAMETERS, "seed"}  # TrainConfig field names, nothing else
    assert isinstance(ps["lr"], Float) and (ps["lr"].lower, ps["lr"].upper) == (1e-3, 0.5)
    assert ps["steps"].categories == [10, 20, 30]
    assert ps["warmup_steps"].categories == [0, 2, 3]               # Table 6's "off": no warmup
    assert ps["steps_per_decay"].categories == [None, 4, 6, 8]      # and no decay
    assert ps["decay_factor"].categories == [None, 0.1, 0.5]
    assert ps["prompt_length"].categories == [1, 5, 20, 100, 150]
    assert set(ps["init"].categories) == {"random_uniform", "sampled_vocab", "class_label"}
    assert isinstance(ps["batch_size"], Categorical) and ps["batch_size"].categories == [1]
    assert space.param_space(SweepConfig(search="paper", batch_sizes="4,8"))["batch_size"].categories == [4, 8]
    seeds = space.param_space(compose(SweepConfig, search="seeds", trials=3, num_prompts=2, scale=100))
    assert seeds["seed"] == {"grid_search": [0, 2, 4]} and seeds["steps"] == 300
    assert seeds["lr"] is None and seeds["scale_parameter"] is None  # the run's recipe decides (tuning/recipe.py)
    assert space.param_space(SweepConfig(search="seeds", lr=0.3))["lr"] == 0.3
    schedule = space.param_space(SweepConfig(search="seeds", warmup_steps=10, decay_factor=0.7, steps_per_decay=600))
    assert (schedule["warmup_steps"], schedule["decay_factor"], schedule["steps_per_decay"]) == (10, 0.7, 600)
    with pytest.raises(ValueError, match="go together"):
        SweepConfig(decay_factor=0.7).validate()
    assert space.param_space(SweepConfig(search="paper", prompt_length=20))["prompt_length"] == 20  # a pin
    # A trial's resolved space -> TrainConfig overrides, applied with dataclasses.replace.
    train = SweepConfig().train
    assert replace(train, **space.overrides({**seeds, "seed": 0, "train": {}})).lr is None
    # Decay needs both halves; one half off disables it.
    over = space.overrides({**seeds, "decay_factor": 0.5, "steps_per_decay": None, "seed": 1})
    assert over["decay_factor"] is None and over["steps_per_decay"] is None and over["warmup_steps"] == 0
    assert space.overrides({**seeds, "decay_factor": 0.5, "steps_per_decay": 4, "seed": 1})["decay_factor"] == 0.5
    replace(train, **over).validate()


def test_cli_rejects_bad_input_with_one_line(capsys):
    from tuning.sweep.__main__ import main

    assert main(["--tasks", "nope"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown task(s) nope")
    assert main(["--search", "grid"]) == 2
    assert "--search must be" in capsys.readouterr().err
    assert main(["report", "/nonexistent/dir"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
