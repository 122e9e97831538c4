"""``fulfillment-sandbox`` / ``python -m airflow_provider_fulfillment.sandbox``: serve the sandbox.

Prints the ``AIRFLOW_CONN_*`` values that point at it (as ``export`` lines a shell can ``eval``),
then serves until interrupted. ``--port 0`` picks a free port (the printed URL has it). Every fault
knob is a flag (``--rate-limit-every 5 --retry-after 0``) and ``--fault knob=value`` works too.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import socket
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .app import SandboxApp, SandboxConfig
from .faults import KNOB_HELP, Faults
from .live import LiveKnobs
from .testing import LOOPBACK, conn_env


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fulfillment-sandbox",
        description="Local emulator of the DropStream, DCL and Stream APIs, with fault injection.",
    )
    p.add_argument("--host", default=LOOPBACK, help="interface to bind (default 127.0.0.1: loopback only)")
    p.add_argument("--port", type=int, default=8088, help="port (0 = any free port)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--orders", type=int, default=5000, help="DropStream orders in the world")
    p.add_argument("--dcl-orders", type=int, default=None, help="DCL orders (default orders/5, 100..200000)")
    p.add_argument(
        "--stream-orders", type=int, default=None, help="Stream orders (default orders/10, 60..100000)"
    )
    p.add_argument("--days", type=float, default=90.0, help="days of history the world spans")
    p.add_argument(
        "--end", default=None, help="the world's fixed end instant (ISO 8601, default 2026-01-01T00:00:00Z)"
    )
    p.add_argument("--planted", type=int, default=5, help="planted discrepancies of each kind")
    p.add_argument("--session-ttl", type=float, default=60.0, help="DropStream session expiry (s)")
    p.add_argument("--token-ttl", type=float, default=900.0, help="DropStream JWT lifetime (s)")
    p.add_argument("--stream-token-ttl", type=float, default=3600.0, help="Stream token lifetime (s)")
    p.add_argument("--link-ttl", type=float, default=300.0, help="Stream document link lifetime (s)")
    for name in (
        "dropstream_user",
        "dropstream_password",
        "dcl_login",
        "dcl_password",
        "stream_email",
        "stream_password",
    ):
        p.add_argument(f"--{name.replace('_', '-')}", default=getattr(SandboxConfig, name))
    p.add_argument(
        "--advance",
        default="0",
        help="advance the world's clock at start-up: seconds, or 36h, 2d (see clock.py)",
    )
    p.add_argument("--env-file", default=None, help="also write the export lines to this file")
    p.add_argument("--no-warm", action="store_true", help="do not build the shipment index before serving")
    p.add_argument(
        "--record-cache",
        type=int,
        default=20_000,
        help="rendered DropStream records kept in memory (benchmarks: the world's size)",
    )
    p.add_argument("--log-level", default="warning")
    p.add_argument(
        "--live",
        action="append",
        default=[],
        metavar="KNOB=VALUE",
        help="a live-data knob: mid-read mutations, page caps, odd answers (see sandbox.live)",
    )
    faults = p.add_argument_group("fault knobs (see airflow_provider_fulfillment.sandbox.faults)")
    faults.add_argument(
        "--fault", action="append", default=[], metavar="KNOB=VALUE", help="set any fault knob"
    )
    for f in dataclasses.fields(Faults):
        flag = "fault-seed" if f.name == "seed" else f.name.replace("_", "-")
        help_text = KNOB_HELP.get(
            f.name, "limits this fault to a path prefix" if f.name.endswith("_prefix") else ""
        )
        faults.add_argument(f"--{flag}", dest=f"knob_{f.name}", default=None, metavar="V", help=help_text)
    return p


def _pairs(items: Sequence[str], flag: str) -> dict[str, Any]:
    """``KNOB=VALUE`` flags as a dict (dashes in the name read as underscores)."""
    knobs: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"{flag} expects KNOB=VALUE, got {item!r}")
        knobs[name.strip().replace("-", "_")] = value
    return knobs


def build_config(args: argparse.Namespace) -> SandboxConfig:
    knobs = _pairs(args.fault, "--fault")
    for f in dataclasses.fields(Faults):
        value = getattr(args, f"knob_{f.name}")
        if value is not None:
            knobs[f.name] = value
    try:
        faults = Faults.from_dict(knobs)
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc
    extra: dict[str, Any] = {}
    try:
        extra["live"] = LiveKnobs.from_dict(_pairs(args.live, "--live"))
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc
    if args.end:
        end = datetime.fromisoformat(args.end.replace("Z", "+00:00"))
        if end.tzinfo is None:
            raise SystemExit("--end needs a timezone offset (e.g. Z)")
        extra["end"] = end
    return SandboxConfig(
        record_cache=args.record_cache,
        seed=args.seed,
        orders=args.orders,
        days=args.days,
        dcl_orders=args.dcl_orders,
        stream_orders=args.stream_orders,
        planted=args.planted,
        session_ttl=args.session_ttl,
        token_ttl=args.token_ttl,
        stream_token_ttl=args.stream_token_ttl,
        link_ttl=args.link_ttl,
        dropstream_user=args.dropstream_user,
        dropstream_password=args.dropstream_password,
        dcl_login=args.dcl_login,
        dcl_password=args.dcl_password,
        stream_email=args.stream_email,
        stream_password=args.stream_password,
        faults=faults,
        advance=args.advance,
        **extra,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config = build_config(args)
    if args.host not in (LOOPBACK, "localhost", "::1"):
        print(f"warning: binding {args.host}: the sandbox is reachable beyond this machine", file=sys.stderr)
    app = SandboxApp(config)
    if not args.no_warm:
        _ = app.world.dropstream.n_shipments  # build the shipment index now, not on the first request
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        print(f"cannot bind {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    sock.listen(2048)  # accept (queue) connections from the moment the URL is printed
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{host}:{port}"
    lines = [f"export {k}={shlex.quote(v)}" for k, v in conn_env(url, config).items()]
    summary = app.world.summary()
    # The env file is written before anything is printed: whoever reads the printed URL may open it at once.
    if args.env_file:
        with open(args.env_file, "w") as fh:
            fh.write("\n".join(lines) + "\n")
    print(
        f"# fulfillment sandbox on {url} (seed {config.seed}: {summary['dropstream_orders']} DropStream, "
        f"{summary['dcl_orders']} DCL, {summary['stream_orders']} Stream orders; control API at {url}/_control)"
    )
    print("\n".join(lines), flush=True)
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level=args.log_level,
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=3,
        )
    )
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
