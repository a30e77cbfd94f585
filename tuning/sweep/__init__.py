"""Ray Tune sweeps: N prompts per task on one shared frozen checkpoint, registered for serving."""
