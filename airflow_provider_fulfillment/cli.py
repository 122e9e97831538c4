"""`fulfillment`: ad-hoc extraction, reconciliation and state look-ups outside Airflow.

    fulfillment extract   --conn dropstream_default --resource orders --start 2025-12-01 --end 2025-12-02
    fulfillment reconcile --conn '{"conn_type": "dcl", "host": "...", "login": "...", "password": "..."}' \\
                          --start 2025-12-01 --end 2025-12-08
    fulfillment state     --conn "$AIRFLOW_CONN_STREAM_DEFAULT" shipment REF-123

`--conn` is an Airflow connection id (resolved as tasks resolve it: `AIRFLOW_CONN_*` variables, a
secrets backend, the metadata database) or a connection itself, as JSON or as a URI in the form
`AIRFLOW_CONN_*` variables take. The commands run the provider's own operators and hooks — the
same paging, retries, windows and files as in a DAG — with a progress bar on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

INLINE_CONN_ID = "fulfillment_cli"


def use_connection(value: str) -> str:
    """A connection id as given; a JSON or URI connection becomes `AIRFLOW_CONN_FULFILLMENT_CLI` here."""
    text = value.strip()
    if text.startswith("{") or "://" in text:
        if text.startswith("{"):
            json.loads(text)  # a clear error now rather than a lookup failure later
        os.environ[f"AIRFLOW_CONN_{INLINE_CONN_ID.upper()}"] = text
        return INLINE_CONN_ID
    return text


def instant(text: str) -> datetime:
    """`2025-12-01` or an ISO-8601 time; naive means UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@functools.cache
def cli_classes() -> tuple[type, type]:
    """The terminal progress bar and the extract operator that draws it (Airflow is imported only here, so
    `main` can send the log lines Airflow prints from its first import to stderr)."""
    from airflow_provider_fulfillment.operators.extract import FulfillmentExtractOperator, Progress

    class TerminalProgress(Progress):
        """The extract operator's progress, drawn as a bar (or a counter, with no total) on a terminal."""

        stream: TextIO = sys.stderr
        redraw_every = 0.1
        latest: Progress | None = None  # the bar being drawn, finished by the command

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._drawn = 0.0
            TerminalProgress.latest = self
            self.draw()

        def tick(self, n: int = 1) -> None:
            self.count += n
            if self.count & 0x3F and n == 1:
                return
            if self._clock() - self._drawn >= self.redraw_every:
                self.draw()

        def bar(self, width: int = 30) -> str:
            rate = self.rate()
            if self.total:
                share = min(1.0, self.count / self.total)
                filled = int(share * width)
                left = max(0, self.total - self.count)
                eta = f" ETA {left / rate:,.0f} s" if rate > 0 and left else ""
                return (
                    f"{self.what} [{'#' * filled}{'.' * (width - filled)}] {self.count:,}/{self.total:,} "
                    f"{share:4.0%} {rate:,.0f}/s{eta}"
                )
            return f"{self.what}: {self.count:,} records, {rate:,.0f}/s, {self.elapsed:,.1f} s"

        def draw(self, end: str = "") -> None:
            self._drawn = self._clock()
            self.stream.write("\r\033[K" + self.bar() + end)
            self.stream.flush()

        def finish(self) -> None:
            self.draw(end="\n")

    class CliExtractOperator(FulfillmentExtractOperator):
        """The extract operator as is, with a terminal progress bar instead of periodic log lines."""

        progress_class = TerminalProgress

    return TerminalProgress, CliExtractOperator


def extract(conn_id: str, resource: str, args: argparse.Namespace) -> dict[str, Any]:
    TerminalProgress, CliExtractOperator = cli_classes()
    filters = dict(pair.split("=", 1) for pair in args.filter or [])
    operator = CliExtractOperator(
        task_id=f"fulfillment_cli_{resource}",
        conn_id=conn_id,
        resource=resource,
        window=(instant(args.start), instant(args.end)),
        destination=str(Path(args.destination).resolve()),
        format=args.format,
        normalized=args.normalized,
        filters=filters or None,
        window_field=args.window_field,
    )
    started = time.monotonic()
    TerminalProgress.latest = None
    try:
        manifest = operator.execute({})
    finally:
        if TerminalProgress.latest is not None:
            TerminalProgress.latest.finish()
    manifest["seconds"] = round(time.monotonic() - started, 3)
    return manifest


def run_extract(args: argparse.Namespace) -> Any:
    return extract(use_connection(args.conn), args.resource, args)


def run_reconcile(args: argparse.Namespace) -> Any:
    from airflow_provider_fulfillment.operators.reconcile import FulfillmentReconcileOperator

    conn_id = use_connection(args.conn)
    args.format, args.normalized, args.filter, args.window_field = "jsonl", False, None, None
    orders = extract(conn_id, "orders", args)
    shipments = extract(conn_id, "shipments", args)
    operator = FulfillmentReconcileOperator(
        task_id="fulfillment_cli_reconcile",
        orders=orders,
        shipments=shipments,
        destination=str(Path(args.destination).resolve()),
        as_of=args.as_of or args.end,
    )
    return {"orders": orders, "shipments": shipments, "reconciliation": operator.execute({})}


def run_state(args: argparse.Namespace) -> Any:
    from airflow_provider_fulfillment.hooks import get_hook

    with get_hook(use_connection(args.conn)) as hook:
        return hook.get_state(args.resource, args.ident).to_dict()


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="fulfillment", description=__doc__.split("\n\n")[0])
    commands = top.add_subparsers(dest="command", required=True)

    def with_conn(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument(
            "--conn", required=True, help="an Airflow connection id, or a connection as JSON / URI"
        )
        return sub

    def with_window(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--start", required=True, help="window start (ISO date or time; naive = UTC)")
        sub.add_argument("--end", required=True, help="window end, exclusive")
        sub.add_argument("--destination", default="fulfillment-extracts", help="root folder of the files")

    extract_cmd = with_conn(commands.add_parser("extract", help="extract one window of records to a file"))
    extract_cmd.add_argument("--resource", choices=("orders", "shipments"), default="orders")
    with_window(extract_cmd)
    extract_cmd.add_argument("--format", choices=("jsonl", "parquet"), default="jsonl")
    extract_cmd.add_argument("--normalized", action="store_true", help="write the common models")
    extract_cmd.add_argument("--window-field", help="the field the window applies to")
    extract_cmd.add_argument("--filter", action="append", metavar="NAME=VALUE", help="a vendor filter")
    extract_cmd.set_defaults(run=run_extract)

    reconcile_cmd = with_conn(
        commands.add_parser("reconcile", help="extract a window, reconcile orders and shipments")
    )
    with_window(reconcile_cmd)
    reconcile_cmd.add_argument("--as-of", help="when deadlines are measured (default: --end)")
    reconcile_cmd.set_defaults(run=run_reconcile)

    state_cmd = with_conn(commands.add_parser("state", help="one order's or shipment's current state"))
    state_cmd.add_argument("resource", choices=("order", "shipment"))
    state_cmd.add_argument("ident", help="order id / number / reference, or tracking number")
    state_cmd.set_defaults(run=run_state)
    return top


@contextlib.contextmanager
def logs_to_stderr() -> Iterator[TextIO]:
    """Airflow's log lines (printed to file descriptor 1 by loggers set up at import) go to stderr while a
    command runs, so stdout carries the JSON result alone; yields a stream on the real stdout."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    result = os.fdopen(os.dup(saved), "w")
    try:
        yield result
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        result.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    with logs_to_stderr() as stdout:
        try:
            result = args.run(args)
        except Exception as error:  # one line a person can act on, not a traceback
            sys.stderr.write(f"fulfillment {args.command}: {type(error).__name__}: {error}\n")
            return 1
        stdout.write(json.dumps(result, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
