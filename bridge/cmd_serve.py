"""`npcface serve`: run the sidecar (bridge/PROTOCOL.md) until Ctrl-C."""
from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import sys
from pathlib import Path

from ..core.errors import NpcfaceError
from .cli_args import add_motion_argument
from .limits import DEFAULT_ENDPOINT, MAX_STEP_INTERVAL_S, STEP_INTERVAL_S, Limits, Liveness
log = logging.getLogger("npcface.serve")


class ServeError(NpcfaceError):
    code = "bad_config"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("serve", help="run the sidecar: ZeroMQ server for game engines",
                                   description="Run the npcface sidecar (protocol: bridge/PROTOCOL.md).")
    parser.add_argument("--bind", default=DEFAULT_ENDPOINT,
                        help=f"ZeroMQ endpoint, tcp://HOST:PORT or ipc://PATH (default {DEFAULT_ENDPOINT})")
    parser.add_argument("--curve-secret-key", type=Path, metavar="FILE",
                        help="the server's secret certificate (NAME.key_secret from --make-keys): encrypt with "
                             "CurveZMQ (needed off loopback)")
    parser.add_argument("--curve-clients", type=Path, metavar="DIR",
                        help="with --curve-secret-key: accept only clients whose public certificates (*.key) are in DIR")
    parser.add_argument("--make-keys", type=Path, metavar="DIR",
                        help="write a new CurveZMQ certificate pair (NAME.key public, NAME.key_secret) into DIR and exit")
    parser.add_argument("--key-name", default="server", help="NAME for --make-keys (default: server)")
    parser.add_argument("--insecure", action="store_true",
                        help="allow a non-loopback bind without CurveZMQ (anyone who reaches the port can use it)")
    parser.add_argument("--idle-timeout", type=float, default=Liveness().idle_timeout_s, metavar="SECONDS",
                        help="free a silent client's sessions after this long (default %(default)s)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="server processes, each serving its share of the clients (a client's sessions all "
                             "in one); more than 1 adds a front process that owns the endpoint (default 1)")
    parser.add_argument("--render-threads", type=int, default=None, metavar="N",
                        help="render threads per server process (default: one per core)")
    parser.add_argument("--warm-lines", type=int, default=8, metavar="N",
                        help="before serving, load phone decoders for N English lines at once (~56 MB each; default 8)")
    parser.add_argument("--step-interval-ms", type=float, default=STEP_INTERVAL_S * 1000, metavar="MS",
                        help="step the talking sessions together at most this often: 0 steps after every burst "
                             "of requests (lowest latency, more CPU with many talking NPCs; default %(default)g)")
    parser.add_argument("--max-sessions", type=int, default=Limits().max_sessions)
    parser.add_argument("--max-sessions-per-client", type=int, default=Limits().max_sessions_per_client)
    parser.add_argument("--max-message-bytes", type=int, default=Limits().max_message_bytes)
    parser.add_argument("--max-line-seconds", type=float, default=Limits().max_line_seconds)
    add_motion_argument(parser)
    parser.add_argument("--quiet", action="store_true", help="log warnings only")
    parser.set_defaults(run=run)


def is_loopback_endpoint(endpoint: str) -> bool:
    """True for ipc:// and for tcp:// on 127.0.0.0/8, ::1 or localhost."""
    if endpoint.startswith(("ipc://", "inproc://")):
        return True
    if not endpoint.startswith("tcp://"):
        return False
    host = endpoint[len("tcp://"):].rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "*", an interface name or a host name: not provably local


def check_endpoint(endpoint: str, secure: bool, insecure: bool) -> None:
    if not endpoint.startswith(("tcp://", "ipc://")):
        raise ServeError(f"--bind must be tcp://HOST:PORT or ipc://PATH, got {endpoint!r}")
    if endpoint.startswith("tcp://"):
        port = endpoint.rsplit(":", 1)[-1]
        if port != "*" and not (port.isdigit() and 0 <= int(port) <= 65535):
            raise ServeError(f"--bind {endpoint}: the port must be 0-65535 (0 or * = any free port)")
    if is_loopback_endpoint(endpoint) or secure:
        return
    if not insecure:
        raise ServeError(f"refusing to listen on {endpoint}, which is not loopback: configure CurveZMQ "
                         "(--curve-secret-key) or pass --insecure if the network is trusted")
    log.warning("!!! INSECURE: listening on %s without encryption or authentication: anyone who can reach "
                "this port can use this server !!!", endpoint)


def make_keys(folder: Path, name: str) -> int:
    import zmq.auth

    if not name.replace("-", "").replace("_", "").isalnum():
        raise ServeError(f"--key-name must be letters, digits, - or _, got {name!r}")
    folder.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.auth.create_certificates(folder, name)
    Path(secret).chmod(0o600)
    print(f"wrote {public} (public: give it to the other side) and {secret} (keep it secret)")
    return 0


def read_secret_key(path: Path) -> bytes:
    """The Z85 secret key of a certificate file from --make-keys (or a bare 40-character key)."""
    import zmq.auth

    try:
        text = path.read_bytes().strip()
    except OSError as exc:
        raise ServeError(f"cannot read the CurveZMQ key {path}: {exc.strerror}") from None
    if len(text) == 40:
        return text
    try:
        _, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError, KeyError):
        secret = None
    if not secret or len(secret) != 40:
        raise ServeError(f"{path} is not a CurveZMQ secret certificate (Z85); make one with --make-keys")
    return secret


def check_clients_dir(folder: Path | None, secure: bool) -> Path | None:
    if folder is None:
        if secure:
            log.warning("npcface serve: CurveZMQ on: traffic is encrypted, but any client that has the server's "
                        "public key may connect (use --curve-clients DIR to allow only known clients)")
        return None
    if not secure:
        raise ServeError("--curve-clients needs --curve-secret-key")
    if not folder.is_dir() or not any(folder.glob("*.key")):
        raise ServeError(f"--curve-clients {folder}: a folder with client public certificates (*.key) is needed")
    return folder


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.make_keys is not None:
        return make_keys(args.make_keys, args.key_name)
    if args.idle_timeout <= 0 or (args.render_threads is not None and args.render_threads < 1) \
            or not 1 <= args.workers <= 64 or not 0 <= args.warm_lines <= 64:
        raise ServeError("--idle-timeout and --render-threads must be positive, --workers 1-64, --warm-lines 0-64")
    if min(args.max_sessions, args.max_sessions_per_client, args.max_message_bytes, args.max_line_seconds) <= 0:
        raise ServeError("--max-* limits must be positive")
    if not 0 <= args.step_interval_ms <= MAX_STEP_INTERVAL_S * 1000:  # (NaN fails this too)
        raise ServeError(f"--step-interval-ms must be 0-{MAX_STEP_INTERVAL_S * 1000:g}, got {args.step_interval_ms:g}")
    secret = read_secret_key(args.curve_secret_key) if args.curve_secret_key else None
    check_endpoint(args.bind, secure=secret is not None, insecure=args.insecure)
    clients_dir = check_clients_dir(args.curve_clients, secure=secret is not None)
    # One OpenBLAS thread, set before numpy loads: the loop's LAPACK calls are tiny (the LPC solve
    # of a few feature rows), and a thread pool on a busy 2-core machine makes them crawl: three
    # 16x16 solves took 8 us with one thread, 7.2 ms with two (load ~14). A value set wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import zmq

    from ..core.motion.backends import make_generator
    from .server import Server, freeze_loaded_objects
    from .server_workers import WorkerFront

    if args.motion not in (None, "rules"):  # a weights file that does not load stops serve now, in one line
        make_generator(args.motion)

    limits = Limits(max_sessions=args.max_sessions, max_sessions_per_client=args.max_sessions_per_client,
                    max_message_bytes=args.max_message_bytes, max_line_seconds=args.max_line_seconds)
    options = dict(limits=limits, liveness=Liveness(args.idle_timeout), render_workers=args.render_threads,
                   motion=args.motion, step_interval_s=args.step_interval_ms / 1000)
    try:
        if args.workers > 1:
            server = WorkerFront(args.bind, args.workers, options, warm_lines=args.warm_lines, quiet=args.quiet,
                                 curve_secret_key=secret, curve_clients_dir=clients_dir)
        else:
            server = Server(args.bind, curve_secret_key=secret, curve_clients_dir=clients_dir, **options)
    except zmq.ZMQError as exc:
        raise ServeError(f"cannot listen on {args.bind}: {exc}") from None
    if args.workers > 1:
        try:
            server.wait_ready()
        except RuntimeError as exc:
            server.close()
            raise ServeError(f"npcface serve: {exc}") from None
    else:
        log.info("npcface serve: warmed up in %.2f s", server.warm_up(concurrent_lines=args.warm_lines))
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: server.stop())
    # Scripts and tests read this line to learn the port when --bind asks for port 0 (any free one).
    freeze_loaded_objects()
    print(f"npcface serve: ready on {server.endpoint}", flush=True)
    server.run()
    return 0
