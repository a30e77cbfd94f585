"""Environment every process that touches Ray sets before importing it (see docs/ray.md).

No Ray import here: the engine stays Ray-free; the Ray layers call `configure()` first.
"""

import os

RAY_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # else Ray binds the external address on all interfaces
    "RAY_AUTH_MODE": "disabled",               # else a local ray.init writes a token later clusters reject
    "RAY_USAGE_STATS_ENABLED": "0",
}


def configure() -> None:
    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)
