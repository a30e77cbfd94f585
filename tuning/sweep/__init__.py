"""Ray Tune sweeps: N prompts per task on one shared frozen checkpoint, registered for serving."""

from tuning import ray_env

ray_env.configure()  # this package imports Ray: set its environment first (docs/ray.md)
