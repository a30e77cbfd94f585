#!/usr/bin/env bash
# The main job: installs what it needs, then trains a 5-prompt ensemble on MRPC with Ray Tune on a local
# Ray (default model SmolLM2-135M, data from ../shared/data), registers the 5 prompts in registry/ and
# prints the whole-dev-set scores of each prompt and of their majority vote (paper §6).
# Recipe: the decoder-only default (tuning/recipe.py: AdamW, lr scaled to the embeddings, bf16 backbone
# where the CPU has it), prompt length 20, class-label init, 640 steps at batch 8, prompts averaged over
# ~100 steps (--ema-decay 0.99), checkpoint selection on the whole dev set every 160 steps, norms, MLPs and
# attention compiled (--compile: ~1.2x faster steps after ~20 s of compiling). One Tune trial
# trains the 5 prompts packed in one pass (seeds 0-4, each its own batch order) on both cores: 1.4x the
# steps of 5 one-core trials in the same time. ~50 min on a 2-core CPU; extra arguments go to the sweep.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
. .venv/bin/activate
. scripts/env.sh
python -m tuning.sweep --tasks mrpc --search seeds --trials 1 --num-prompts 5 --top-n 5 --prompt-length 20 \
  --steps 640 --batch-size 8 --eval-every 160 --ema-decay 0.99 --compile --no-early-stop --cpus-per-trial 2 \
  --storage "$PWD/runs/sweeps" --name main --registry "$PWD/registry" "$@"
python -m ensemble evaluate --registry registry --task mrpc
