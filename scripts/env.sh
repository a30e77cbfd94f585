# Environment for every process that touches Ray on a small box (see docs/ray.md).
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0   # else Ray binds eth0 on all interfaces
export RAY_AUTH_MODE=disabled                # else a local ray.init writes a token later clusters reject
export RAY_USAGE_STATS_ENABLED=0
export PROMPT_TUNING_DATA=${PROMPT_TUNING_DATA:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/../shared/data}
