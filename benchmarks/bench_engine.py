"""Ensemble engine vs PEFT sequential vs a naive B×N pass, and training with/without the shared prefix.

Side by side in one run on one machine (issue 7). Prints examples/s per (prompt length, batch size),
effective GFLOP/s (FLOPs of the plain full recomputation / time) beside the fp32 matmul peak
measured in the same run, training steps/s, and padding waste.

    python benchmarks/bench_engine.py                       # SmolLM2-135M, MRPC dev inputs, N=5
    python benchmarks/bench_engine.py --dtype bfloat16      # precision option
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ensemble import EnsembleEngine, PromptBank
from tuning.backbone import load_backbone
from tuning.config import TrainConfig
from tuning.encoding import input_ids, target_ids
from tuning.prompts import init_prompt
from tuning.tasks import get_task


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def body_params(backbone) -> int:
    emb = backbone.model.get_input_embeddings().weight.numel()
    return sum(p.numel() for p in backbone.model.parameters()) - emb


def plain_flops(backbone, n_prompts: int, p: int, lengths: list[int], cand_lengths: list[int]) -> float:
    """FLOPs of PEFT-style full recomputation: every (prompt, example, candidate) row runs p + L + T positions."""
    cfg = backbone.model.config
    body, d, vocab = body_params(backbone), cfg.hidden_size, cfg.vocab_size
    total = 0.0
    for L in lengths:
        for T in cand_lengths:
            s = p + L + T
            total += 2 * body * s + 2 * 2 * cfg.num_hidden_layers * s * s * d / 2 + 2 * d * vocab * T
    return n_prompts * total


class PeftSequential:
    """The peer baseline: one PEFT prompt-tuning adapter per prompt, switched with set_adapter."""

    def __init__(self, backbone, prompts: torch.Tensor, labels):
        from peft import PromptTuningConfig, get_peft_model

        self.backbone, self.labels, self.n = backbone, labels, len(prompts)
        cfg = PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=prompts.shape[1])
        self.model = get_peft_model(backbone.model, cfg, adapter_name="p0")
        for k in range(1, self.n):
            self.model.add_adapter(f"p{k}", cfg)
        with torch.no_grad():
            for k in range(self.n):
                self.model.prompt_encoder[f"p{k}"].embedding.weight.copy_(prompts[k])
        self.model.eval()
        self.cands = [target_ids(backbone, label) for label in labels]
        self.width = max(len(c) for c in self.cands)

    @torch.no_grad()
    def predict(self, texts: list[str]) -> list[list[str]]:
        tok = self.backbone.tokenizer
        seqs = [input_ids(self.backbone, t, 256) + c for t in texts for c in self.cands]
        width = max(map(len, seqs))
        ids = torch.full((len(seqs), width), tok.pad_token_id)
        mask = torch.zeros_like(ids)
        for i, s in enumerate(seqs):  # left padding: every candidate ends at the last position
            ids[i, width - len(s):], mask[i, width - len(s):] = torch.tensor(s), 1
        out = []
        for k in range(self.n):
            self.model.set_adapter(f"p{k}")
            logits = self.model(input_ids=ids, attention_mask=mask, logits_to_keep=self.width + 1).logits
            logp = torch.log_softmax(logits[:, :-1].float(), -1)
            scores = []
            for i, s in enumerate(seqs):
                c = self.cands[i % len(self.cands)]
                scores.append(logp[i, self.width - len(c):].gather(-1, torch.tensor(c)[:, None]).sum())
            best = torch.stack(scores).view(len(texts), len(self.cands)).argmax(-1)
            out.append([self.labels[j] for j in best.tolist()])
        return out


def bench(fn, batches: list[list[str]]):
    """(examples per second over the batches, the last batch's output); one 1-example warm-up call first."""
    fn(batches[0][:1])
    times, out = [], None
    for b in batches:
        t = time.perf_counter()
        out = fn(b)
        times.append((time.perf_counter() - t) / len(b))
    return 1.0 / statistics.median(times), out


def train_steps_per_s(backbone, task, examples, p, shared: bool, steps: int, batch_size: int) -> float:
    """Median rate of the training loop's own `Trainer.step()` (tokenising its batch included)."""
    from tuning.train import Trainer

    config = TrainConfig(task=task.name, prompt_length=p, init="sampled_vocab", batch_size=batch_size,
                         shared_prefix=shared, steps=steps + 1, progress=False)
    trainer = Trainer(config, backbone=backbone, train_examples=examples, dev_examples=examples[:1])
    times = [_timed(trainer.step) for _ in range(steps + 1)]
    return 1.0 / statistics.median(times[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--task", default="mrpc")
    ap.add_argument("--n-prompts", type=int, default=5)
    ap.add_argument("--prompt-lengths", type=int, nargs="+", default=[20, 100])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--batches", type=int, default=2, help="timed batches per setting (median)")
    ap.add_argument("--train-steps", type=int, default=3)
    ap.add_argument("--train-batch", type=int, default=8)
    ap.add_argument("--max-rows", type=int, default=None, help="engine micro-batch rows (default: calibrate)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    peak = matmul_peak()
    dtype = getattr(torch, args.dtype)
    backbone = load_backbone(args.model, dtype=dtype)
    task = get_task(args.task)
    dev = task.load("validation")
    texts = [e.input_text for e in dev]
    lengths = [len(input_ids(backbone, t, 256)) for t in texts]
    cand_lengths = [len(target_ids(backbone, v)) for v in task.verbalizers]
    print(f"model {args.model} ({args.dtype}), {torch.get_num_threads()} threads, fp32 matmul peak {peak:.0f} GFLOP/s")
    print(f"{args.task} dev inputs: mean {statistics.mean(lengths):.0f} tokens; labels {task.verbalizers} "
          f"({cand_lengths} tokens); N={args.n_prompts} prompts\n")
    print("| prompt | batch | PEFT sequential ex/s | naive B×N ex/s | engine ex/s | engine/PEFT | naive/PEFT "
          "| engine GFLOP/s (eff.) | PEFT GFLOP/s | padding waste (bucketed / not) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    summary = []
    for p in args.prompt_lengths:
        prompts = torch.stack([init_prompt(backbone, p, "sampled_vocab", s) for s in range(args.n_prompts)])
        bank = PromptBank(backbone)
        bank.add(args.task, prompts)
        naive = EnsembleEngine(bank, shared_prefix=False, max_rows=10 ** 9, bucket=False)
        engine = EnsembleEngine(bank, shared_prefix=True, max_rows=args.max_rows or 32)
        if args.max_rows is None:
            engine.calibrate(input_length=int(statistics.mean(lengths)))
        peft = PeftSequential(backbone, prompts.to(dtype), task.verbalizers)
        for bs in args.batch_sizes:
            batches = [texts[i * bs:(i + 1) * bs] for i in range(args.batches)]
            flops = statistics.mean(plain_flops(backbone, args.n_prompts, p, [lengths[texts.index(t)] for t in b],
                                                cand_lengths) / len(b) for b in batches)
            r_peft, ref = bench(peft.predict, batches)
            naive.stats = {k: 0 for k in naive.stats}
            r_naive, _ = bench(lambda b: naive.predict([(args.task, t) for t in b]), batches)
            waste_n = naive.stats["padded_positions"] / naive.stats["real_positions"]
            engine.stats = {k: 0 for k in engine.stats}
            r_eng, eng = bench(lambda b: engine.predict([(args.task, t) for t in b]), batches)
            waste_b = engine.stats["padded_positions"] / engine.stats["real_positions"]
            # PEFT and the engine give the same answers on the last batch
            agree = statistics.mean(float(ref[k][i] == r.answers[k]) for i, r in enumerate(eng) for k in range(args.n_prompts))
            print(f"| {p} | {bs} | {r_peft:.2f} | {r_naive:.2f} | {r_eng:.2f} | **{r_eng / r_peft:.2f}×** | "
                  f"{r_naive / r_peft:.2f}× | {flops * r_eng / 1e9:.0f} | {flops * r_peft / 1e9:.0f} | "
                  f"{waste_b:.2f} / {waste_n:.2f} |", flush=True)
            summary.append((p, bs, r_eng / r_peft, agree))
        how = "configured" if args.max_rows else "calibrated"
        print(f"|  | engine micro-batch: {engine.max_rows} rows ({how}) |  |  |  |  |  |  |  |  |")
    print("\nPEFT answers equal to the engine's (per prompt and example): "
          + ", ".join(f"p{p}/B{bs}: {a:.0%}" for p, bs, _, a in summary))

    print("\n| prompt | train batch | plain steps/s | shared-prefix steps/s | speed-up |")
    print("|---:|---:|---:|---:|---:|")
    for p in args.prompt_lengths:
        plain = train_steps_per_s(backbone, task, dev, p, False, args.train_steps, args.train_batch)
        shared = train_steps_per_s(backbone, task, dev, p, True, args.train_steps, args.train_batch)
        print(f"| {p} | {args.train_batch} | {plain:.3f} | {shared:.3f} | **{shared / plain:.2f}×** |", flush=True)


if __name__ == "__main__":
    main()
