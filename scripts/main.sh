#!/usr/bin/env bash
# The main job: installs what it needs, then trains prompts on MRPC with the default model (SmolLM2-135M)
# and prints dev metrics. Extra arguments are passed to the trainer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
. .venv/bin/activate
. scripts/env.sh
python -m tuning train --task mrpc --prompt-length 20 --steps 60 --batch-size 8 --eval-every 20 \
  --eval-examples 200 --output-dir runs "$@"
