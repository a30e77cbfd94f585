#!/usr/bin/env bash
# The main job: installs what it needs, then trains a 5-prompt ensemble on MRPC with Ray Tune on a local
# Ray (default model SmolLM2-135M, data from ../shared/data), registers the best 5 prompts in registry/
# and prints the dev scores of each prompt and of the majority-vote ensemble (paper §6).
# Budget: CPU-sized (the paper trains 30,000 steps at batch 32); extra arguments go to the sweep.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
. .venv/bin/activate
. scripts/env.sh
python -m tuning.sweep --tasks mrpc --search seeds --trials 5 --top-n 5 --prompt-length 20 \
  --steps 60 --batch-size 8 --eval-every 20 --eval-examples 100 --cpus-per-trial 1 \
  --storage "$PWD/runs/sweeps" --name main --registry "$PWD/registry" "$@"
python -m ensemble evaluate --registry registry --task mrpc --examples 200
