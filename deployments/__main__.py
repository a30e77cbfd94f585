"""`python -m deployments --registry registry --model smollm2-135m`: serve prompt ensembles locally.

Starts (or joins) a Ray cluster, runs the app on http://HOST:PORT and blocks until Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from tuning import ray_env

ray_env.configure()  # before Ray is imported


def build_parser() -> argparse.ArgumentParser:
    from tuning.cli import add_config_args

    from .config import ServeConfig

    parser = argparse.ArgumentParser(prog="python -m deployments", description=__doc__.splitlines()[0])
    add_config_args(parser, ServeConfig)
    return parser


def main(argv=None) -> int:
    from tuning.cli import config_from_args, report_error

    from .config import ServeConfig

    args = build_parser().parse_args(argv)
    try:  # only the config: errors once Serve runs keep their tracebacks
        config = config_from_args(args, ServeConfig).validate()
    except ValueError as e:
        return report_error(e)

    import ray
    from ray import serve

    from .app import build

    # RAY_ADDRESS: an existing cluster; else a new local Ray ("local": never a stale recorded cluster).
    ray.init(address=os.environ.get("RAY_ADDRESS") or "local", dashboard_host="127.0.0.1")
    # The proxy's end-to-end bound (408) covers what the replica cannot: waiting for a replica that is restarting.
    serve.start(http_options={"host": config.host, "port": config.port,
                              "request_timeout_s": config.request_timeout_s + 5})
    serve.run(build(config), name=config.app_name, route_prefix=config.route_prefix)
    print(f"serving on http://{config.host}:{config.port}{config.route_prefix.rstrip('/')}/docs "
          f"(registry {os.path.abspath(config.registry)}); Ctrl-C to stop", flush=True)
    # Ctrl-C and SIGTERM both shut Serve down (a backgrounded process would otherwise ignore SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
