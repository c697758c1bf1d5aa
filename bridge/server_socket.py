"""The clients' socket of the sidecar (a lone Server's, or `serve --workers`' front's)."""
from __future__ import annotations

from pathlib import Path

import zmq


def clients_socket(context: zmq.Context, endpoint: str, max_message_bytes: int, curve_secret_key: bytes | None = None,
                   curve_clients_dir: Path | None = None):
    """(the engines' ROUTER bound to ``endpoint``, the ZAP authenticator running for it or None,
    the endpoint bound); ZMQError, with nothing left open, if it cannot bind."""
    socket = context.socket(zmq.ROUTER)
    socket.setsockopt(zmq.ROUTER_MANDATORY, 1)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.SNDHWM, 100_000)  # ticks are small; frames are bounded by the window
    socket.setsockopt(zmq.MAXMSGSIZE, 4 * max_message_bytes)
    authenticator = None
    if curve_clients_dir is not None:  # ZAP: only the listed clients' keys get in
        from zmq.auth.thread import ThreadAuthenticator

        authenticator = ThreadAuthenticator(context)
        authenticator.start()
        authenticator.configure_curve(domain="*", location=str(curve_clients_dir))
    if curve_secret_key is not None:
        socket.curve_secretkey = curve_secret_key
        socket.curve_publickey = zmq.curve_public(curve_secret_key)
        socket.curve_server = True
    try:
        socket.bind(endpoint)
    except zmq.ZMQError:
        socket.close(linger=0)
        if authenticator is not None:
            authenticator.stop()
        raise
    return socket, authenticator, socket.getsockopt_string(zmq.LAST_ENDPOINT)
