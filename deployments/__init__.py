"""Ray Serve HTTP endpoint for prompt ensembles (paper §6): one frozen backbone, every task's prompts.

`deployments.app` holds the deployment and its FastAPI ingress; `python -m deployments` starts it
locally; `serve run deployments/serve_config.yaml` starts it from a Serve config.
"""
