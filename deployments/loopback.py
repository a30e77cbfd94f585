"""Keep the single-node setup off the network: the one port Ray Serve 2.60 opens on all interfaces.

Every Ray and Serve port of a local cluster listens on loopback (`tuning/ray_env.py`, `--host`), except
the inter-deployment gRPC server each replica starts on `[::]:0` (`ray/serve/_private/replica.py`,
hard-coded). When this node's Ray address is a loopback one, nothing off the machine can call it
anyway, so the replica binds it to 127.0.0.1 instead. On a multi-node cluster (a routable node IP)
Serve's behaviour is left alone.
"""

from __future__ import annotations

import ipaddress
import logging

logger = logging.getLogger("ray.serve")


def _node_is_loopback() -> bool:
    try:
        import ray.util
        return ipaddress.ip_address(ray.util.get_node_ip_address()).is_loopback
    except Exception:
        return False


def bind_replica_grpc_to_loopback() -> None:
    """Patch the replica module's port helper (call in the replica process before it initialises)."""
    try:
        from ray.serve._private import replica
    except ImportError:
        return
    original = getattr(replica, "add_port_to_grpc_server", None)
    if original is None or getattr(original, "_loopback", False):
        return

    def add_port(server, address: str):
        if address.startswith("[::]:") and _node_is_loopback():
            address = "127.0.0.1:" + address.rsplit(":", 1)[1]
        return original(server, address)

    add_port._loopback = True
    replica.add_port_to_grpc_server = add_port
