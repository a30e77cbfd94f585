"""The prompt-tuning engine on tiny random T5 and Llama models (paper §2-3)."""

from __future__ import annotations

import torch
import pytest

from tuning.config import TrainConfig
from tuning.encoding import Batch, encode, encode_candidates, input_ids, pad
from tuning.model import PromptedLM
from tuning.tasks import Example
from tuning.train import train

INPUTS = ["sentence1: the cat sat on the mat sentence2: a cat was sitting", "who wrote the book",
          "premise: the man turned on the faucet hypothesis: water flowed"]
LABELS = [("equivalent", "not_equivalent"), ("True", "False"), ("entailment", "not_entailment", "neutral")]


def _toy(n: int = 32) -> list[Example]:
    """A learnable task: the label is whether the input mentions a cat."""
    words = ["cat", "dog", "mat", "book", "man", "water"]
    out = []
    for i in range(n):
        animal = words[i % 2]
        text = f"sentence1: the {animal} sat on the {words[2 + i % 4]} sentence2: a {animal}"
        label = int(animal == "cat")
        verb = ("not_equivalent", "equivalent")[label]
        out.append(Example(text, verb, (verb,), label))
    return out


def _cfg(**kw) -> TrainConfig:
    base = dict(task="mrpc", prompt_length=4, steps=4, batch_size=4, eval_every=2, progress=False,
                init="random_uniform")
    return TrainConfig(**{**base, **kw})


def test_backbone_is_frozen_and_bit_identical_after_prompt_training(tiny):
    before = {k: v.clone() for k, v in tiny.model.state_dict().items()}
    assert not any(p.requires_grad for p in tiny.model.parameters())
    train(_cfg(), backbone=tiny, train_examples=_toy(), dev_examples=_toy(8))
    after = tiny.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_only_the_prompt_receives_gradients(tiny):
    lm = PromptedLM(tiny)
    prompt = torch.nn.Parameter(torch.randn(1, 4, tiny.embed_dim) * 0.3)
    batch = encode(tiny, INPUTS, ["equivalent", "True", "neutral"])
    lm.loss(prompt, batch).backward()
    assert prompt.grad is not None and prompt.grad.abs().sum() > 0
    assert all(p.grad is None for p in tiny.model.parameters())


@pytest.mark.parametrize("shared_prefix", [True, False])
def test_loss_falls_on_a_learnable_task(tiny, shared_prefix):
    result = train(_cfg(steps=30, eval_every=30, batch_size=8, lr=0.3, shared_prefix=shared_prefix),
                   backbone=tiny, train_examples=_toy(), dev_examples=_toy(8))
    losses = [h["loss"] for h in result.history]
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5


def test_training_is_repeatable_by_seed(tiny_dirs):
    from tuning.backbone import load_backbone

    runs = [train(_cfg(steps=3, eval_every=3), backbone=load_backbone(str(tiny_dirs["llama"])),
                  train_examples=_toy(), dev_examples=_toy(4)) for _ in range(2)]
    assert torch.equal(runs[0].prompts[0], runs[1].prompts[0])
    other = train(_cfg(steps=3, eval_every=3, seed=1), backbone=load_backbone(str(tiny_dirs["llama"])),
                  train_examples=_toy(), dev_examples=_toy(4))
    assert not torch.equal(runs[0].prompts[0], other.prompts[0])


@pytest.mark.parametrize("ema_decay", [None, 0.8])
def test_packed_prompts_equal_separate_runs(tiny_llama, ema_decay):
    """K prompts in one pass follow exactly the trajectories of K separate runs with seeds seed + k: their
    own init and their own batch order, normalised by their own target tokens (the two labels' token
    counts differ, so the batches of the two prompts do too)."""
    cfg = dict(steps=3, eval_every=3, init="sampled_vocab", optimizer="adamw", lr=0.05, ema_decay=ema_decay)
    packed = train(_cfg(num_prompts=2, **cfg), backbone=tiny_llama, train_examples=_toy(), dev_examples=_toy(4))
    singles = [train(_cfg(seed=k, **cfg), backbone=tiny_llama, train_examples=_toy(), dev_examples=_toy(4))
               for k in range(2)]
    for k, single in enumerate(singles):
        torch.testing.assert_close(packed.prompts[k], single.prompts[0], atol=1e-5, rtol=1e-4)
    losses = [[h["loss"] for h in run.history] for run in singles]
    assert losses[0] != losses[1]  # other batches
    assert [h["loss"] for h in packed.history] == pytest.approx([(a + b) / 2 for a, b in zip(*losses)], rel=1e-4)


def test_ema_keeps_the_moving_average_of_the_prompt(tiny_llama):
    """--ema-decay d: after each step average ← d·average + (1 − d)·prompt, from the initial prompt; the
    average is what is evaluated and kept."""
    from tuning.train import Trainer

    trainer = Trainer(_cfg(steps=3, eval_every=3, optimizer="adamw", lr=0.05, ema_decay=0.5), backbone=tiny_llama,
                      train_examples=_toy(), dev_examples=_toy(4))
    expected = trainer.prompts[0].detach().clone()
    for _ in range(3):
        trainer.step()
        expected = 0.5 * expected + 0.5 * trainer.prompts[0].detach()
    torch.testing.assert_close(trainer.averaged[0], expected)
    assert not torch.allclose(trainer.averaged[0], trainer.prompts[0].detach())
    trainer.evaluate()
    assert torch.equal(trainer.result().prompts[0], trainer.averaged[0])


def test_a_residual_reparameterization_starts_at_the_init_and_trains_its_output(tiny_llama):
    """prompt = P + LayerNorm(MLP(P)) with a zero LayerNorm gain: step 0 is the paper's init exactly; after
    training, the prompt the run keeps and evaluates is the network's output, not the raw P."""
    from tuning.train import Trainer

    plain, residual = (Trainer(_cfg(steps=3, eval_every=3, optimizer="adamw", lr=0.05, reparameterization=r),
                               backbone=tiny_llama, train_examples=_toy(), dev_examples=_toy(4))
                       for r in ("none", "residual_mlp"))
    torch.testing.assert_close(residual.trained_prompts()[0], plain.trained_prompts()[0], rtol=0, atol=0)
    trained = {n for n, p in residual.parameterized[0].named_parameters() if p.requires_grad}
    assert {"raw", "norm.weight", "mlp.0.weight", "mlp.2.weight"} <= trained
    assert sum(len(g["params"]) for g in residual.optimizer.param_groups) == len(trained)
    result = residual.fit()
    module = residual.parameterized[0]
    with torch.no_grad():
        output = module.raw + module.norm(module.mlp(module.raw))
    assert module.norm.weight.abs().sum() > 0 and module.mlp[2].weight.grad.abs().sum() > 0
    assert not torch.allclose(output, module.raw)
    torch.testing.assert_close(residual.trained_prompts()[0], output)
    assert result.best_metrics[0]["step"] == 3
    torch.testing.assert_close(result.prompts[0], output)


@pytest.mark.parametrize("bad", [dict(reparameterization="lstm"), dict(reparam_bottleneck=0),
                                 dict(reparameterization="residual_mlp", mode="model")])
def test_a_bad_reparameterization_is_refused(bad):
    with pytest.raises(ValueError, match="--reparam"):
        _cfg(**bad).validate()


@pytest.mark.parametrize("bad", [dict(ema_decay=1.0), dict(ema_decay=-0.1), dict(ema_decay=0.9, mode="model")])
def test_ema_decay_out_of_range_or_for_model_tuning_is_refused(bad):
    with pytest.raises(ValueError, match="--ema-decay"):
        _cfg(**bad).validate()
    _cfg(ema_decay=0.0, mode="model").validate()  # 0: no averaging, for any mode


def test_model_tuning_changes_weights_through_the_same_loop(tiny_dirs):
    from tuning.backbone import load_backbone

    backbone = load_backbone(str(tiny_dirs["t5"]), trainable=True)
    before = {k: v.clone() for k, v in backbone.model.state_dict().items()}
    result = train(_cfg(mode="model", steps=3, eval_every=1), backbone=backbone, train_examples=_toy(),
                   dev_examples=_toy(4))
    changed = sum(not torch.equal(before[k], v) for k, v in result.backbone.model.state_dict().items())
    assert changed > len(before) // 2
    assert not any(p.requires_grad for p in result.backbone.model.parameters())


class _Stop(Exception):
    pass


def _roundtrip(state: dict) -> dict:
    """Through bytes, as a checkpoint file would carry it (and loadable with weights_only)."""
    import io
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("mode, reparameterization", [("prompt", "none"), ("prompt", "residual_mlp"), ("model", "none")])
def test_a_run_restored_from_its_state_ends_like_an_uninterrupted_one(tiny_dirs, mode, reparameterization):
    """Crash after the step-4 evaluation, restore the step-2 state in a new Trainer: same end as one run."""
    from tuning.backbone import load_backbone
    from tuning.train import Trainer

    packed = dict(num_prompts=2, ema_decay=0.7, reparameterization=reparameterization) if mode == "prompt" else {}
    cfg = _cfg(mode=mode, steps=6, eval_every=2, optimizer="adamw", lr=0.05, decay_factor=0.5, steps_per_decay=3,
               patience=5, **packed)

    def trainer():
        backbone = load_backbone(str(tiny_dirs["llama"]), trainable=mode == "model")
        return Trainer(cfg, backbone=backbone, train_examples=_toy(), dev_examples=_toy(4))

    whole = trainer().fit()
    first, saved = trainer(), {}

    def crash(step, *_):
        if step == 2:
            saved["state"] = _roundtrip(first.state_dict())
        if step == 4:
            raise _Stop

    with pytest.raises(_Stop):
        first.fit(on_eval=crash)
    resumed = trainer()
    resumed.load_state_dict(saved["state"])
    assert resumed.step_count == 2 and all(s.drawn == 2 for s in resumed.samplers)
    again = resumed.fit()
    assert [h["step"] for h in again.history] == list(range(1, 7))
    assert [h["loss"] for h in again.history] == [h["loss"] for h in whole.history]
    assert [h["lr"] for h in again.history] == [h["lr"] for h in whole.history]
    assert again.best_metrics == whole.best_metrics
    for a, b in zip(again.prompts, whole.prompts):
        assert torch.equal(a, b)
    if mode == "model":
        a, b = again.backbone.model.state_dict(), whole.backbone.model.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("saved, resumed, message", [
    (dict(prompt_length=4), dict(prompt_length=5), "prompt shapes"),
    (dict(ema_decay=0.9), dict(), "--ema-decay"),
    (dict(), dict(ema_decay=0.9), "--ema-decay"),
    (dict(reparameterization="residual_mlp"), dict(), "--reparameterization"),
    (dict(), dict(reparameterization="residual_mlp"), "--reparameterization"),
])
def test_a_state_of_another_prompt_config_is_refused(tiny_llama, saved, resumed, message):
    from tuning.train import Trainer

    state = Trainer(_cfg(**saved), backbone=tiny_llama, train_examples=_toy(), dev_examples=_toy(4)).state_dict()
    other = Trainer(_cfg(**resumed), backbone=tiny_llama, train_examples=_toy(), dev_examples=_toy(4))
    with pytest.raises(ValueError, match=message):
        other.load_state_dict(state)


def test_scores_do_not_depend_on_padding_side_or_batch_composition(tiny):
    lm = PromptedLM(tiny)
    torch.manual_seed(0)
    prompts = torch.randn(3, 5, tiny.embed_dim) * 0.5
    index = torch.arange(3)
    ref = lm.score(prompts, encode_candidates(tiny, INPUTS, LABELS, padding_side="right"), index)
    left = lm.score(prompts, encode_candidates(tiny, INPUTS, LABELS, padding_side="left"), index)
    torch.testing.assert_close(left, ref, atol=1e-4, rtol=1e-4)
    for i in range(3):  # each example alone, with only its own prompt
        alone = lm.score(prompts[i:i + 1], encode_candidates(tiny, INPUTS[i:i + 1], LABELS[i:i + 1]))
        torch.testing.assert_close(alone[0, :len(LABELS[i])], ref[i, :len(LABELS[i])], atol=1e-4, rtol=1e-4)
    assert torch.isinf(ref[:2, 2]).all()  # padded candidate slots never win


def test_rank_scores_equal_the_training_log_likelihood(tiny):
    """score() branches candidates off a cache; target_logprobs() runs one pass: same numbers."""
    lm = PromptedLM(tiny)
    prompts = torch.randn(3, 5, tiny.embed_dim) * 0.5
    scores = lm.score(prompts, encode_candidates(tiny, INPUTS, LABELS), torch.arange(3))
    for c in range(2):
        gold = lm.target_logprobs(prompts, encode(tiny, INPUTS, [lab[c] for lab in LABELS]), torch.arange(3))
        torch.testing.assert_close(gold.sum(-1), scores[:, c], atol=1e-4, rtol=1e-4)


def test_shared_prefix_equals_full_recomputation(tiny_llama):
    """Logits and gradients through precomputed prompt keys/values equal the plain pass."""
    lm = PromptedLM(tiny_llama)
    for side in ("left", "right"):
        prompts = torch.nn.Parameter(torch.randn(3, 5, tiny_llama.embed_dim) * 0.5)
        cand = encode_candidates(tiny_llama, INPUTS, LABELS, padding_side=side)
        index = torch.tensor([0, 2, 1])
        torch.testing.assert_close(lm.score(lm.prefix_kv(prompts), cand, index), lm.score(prompts, cand, index),
                                   atol=1e-4, rtol=1e-4)
        batch = encode(tiny_llama, INPUTS, ["equivalent", "True", "neutral"], padding_side=side)
        lm.loss(prompts, batch, index).backward()
        plain = prompts.grad.clone()
        prompts.grad = None
        lm.loss(lm.prefix_kv(prompts), batch, index).backward()
        torch.testing.assert_close(prompts.grad, plain, atol=1e-5, rtol=1e-3)


def test_shared_prefix_refuses_t5(tiny_t5):
    with pytest.raises(ValueError, match="bidirectional"):
        PromptedLM(tiny_t5).prefix_kv(torch.zeros(1, 2, tiny_t5.embed_dim))


def test_generation_is_the_greedy_continuation(tiny):
    """Each generated token is the argmax over every one-token continuation of what came before."""
    lm = PromptedLM(tiny)
    torch.manual_seed(0)
    prompts = torch.randn(3, 4, tiny.embed_dim) * 0.5
    out = lm.generate(prompts, encode(tiny, INPUTS, padding_side="left"), torch.arange(3), max_new_tokens=3)
    vocab = torch.arange(len(tiny.tokenizer))
    assert all(0 < len(t) <= 3 for t in out)
    for i, tokens in enumerate(out):
        for j, tok in enumerate(tokens):
            ids, mask = pad([input_ids(tiny, INPUTS[i], 256)] * len(vocab), tiny.tokenizer.pad_token_id)
            cont = torch.cat([torch.tensor(tokens[:j], dtype=torch.long).expand(len(vocab), j), vocab[:, None]], 1)
            scores = lm.target_logprobs(prompts[i:i + 1], Batch(ids, mask, cont, torch.ones_like(cont))).sum(-1)
            assert int(scores.argmax()) == tok
        assert tiny.tokenizer.eos_token_id not in tokens


def test_length_buckets_cover_every_example_and_cut_padding():
    from tuning.train import batches

    lengths = [(i * 37) % 101 for i in range(200)]
    for bucket in (True, False):
        gen = batches(lengths, 8, seed=0, bucket=bucket, pool=25)
        epoch = [next(gen) for _ in range(25)]
        assert sorted(i for b in epoch for i in b) == list(range(200))
        spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in epoch)
        if bucket:
            bucketed = spread
        else:
            assert bucketed * 3 < spread


@pytest.mark.parametrize("kind", ["llama", "t5"])
def test_compiled_training_steps_equal_eager_ones(tiny_dirs, kind):
    """--compile fuses the norms, MLPs and eager attention: in fp32, two packed steps (shared prefix for the
    causal LM) end at the eager run's prompts and losses. The compiled attention keeps eager's additive
    mask: with SDPA's boolean mask the losses would differ by whole nats."""
    from tuning.backbone import load_backbone
    from tuning.train import Trainer

    def run(compile: bool) -> tuple[Trainer, list[float]]:
        backbone = load_backbone(str(tiny_dirs[kind]), dtype=torch.float32)
        backbone.model.set_attn_implementation("eager")
        trainer = Trainer(_cfg(num_prompts=2, optimizer="adamw", lr=0.05, compile=compile), backbone=backbone,
                          train_examples=_toy(), dev_examples=_toy(4))
        return trainer, [trainer.step()["loss"] for _ in range(2)]

    (eager, eager_losses), (compiled, compiled_losses) = run(False), run(True)
    if kind == "llama":
        assert compiled.backbone.model.config._attn_implementation == "compiled_eager_modeling_llama"
    assert any(getattr(m, "_compiled_call_impl", None) for m in compiled.backbone.model.modules())
    assert compiled_losses == pytest.approx(eager_losses, rel=1e-5)
    for a, b in zip(compiled.prompts, eager.prompts):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
