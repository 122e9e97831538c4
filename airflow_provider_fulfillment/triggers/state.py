"""`FulfillmentStateTrigger`: waits in the triggerer until an order or shipment reaches a state.

Deferrable `OrderStateSensor` / `ShipmentStateSensor` hand off to it, so a wait of hours or days holds
no worker slot. It polls through the hook's async twin of `get_state` (the same HTTP core as the sync
hooks: auth, retries, `Retry-After`), reads the connection with `BaseHook.aget_connection` (never a sync
lookup on the event loop), and fires exactly one event.

The event carries everything the resumed task needs (status, message and the record's state as plain
JSON), because `airflow dags test` passes only the event back to `execute_complete`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any, Literal

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_fulfillment.hooks.base import RecordState

log = logging.getLogger(__name__)

Outcome = Literal["ok", "failed"]
EVENT_STATUSES = ("ok", "failed", "error")
RESOURCES = ("order", "shipment")


def normalize_states(states: Iterable[str] | str | None, name: str) -> tuple[str, ...]:
    """A tuple of non-empty state names; one string is one state (not its characters)."""
    if states is None:
        return ()
    if isinstance(states, str):
        states = (states,)
    result: list[str] = []
    for state in states:
        if not isinstance(state, str) or not state.strip():
            raise ValueError(f"{name} must be state names (strings), got {state!r}")
        result.append(state.strip())
    return tuple(dict.fromkeys(result))


def match_state(
    state: RecordState, target_states: Iterable[str], failure_states: Iterable[str]
) -> Outcome | None:
    """The outcome for a state: "failed" (a failure state), "ok" (a target state) or None (keep waiting).

    A state given may be the vendor's raw state (`error_sending_to_warehouse`, DCL stage `"60"`) or a
    normalized one (`shipped`, `error`); both are compared case-insensitively. Failure wins over
    target, so a state listed in both stops the wait as a failure.
    """
    if not state.found:
        return None
    current = {value.casefold() for value in (state.raw_status, state.status) if value}
    if current & {value.casefold() for value in failure_states}:
        return "failed"
    if current & {value.casefold() for value in target_states}:
        return "ok"
    return None


def describe(state: RecordState) -> str:
    """`DropStream order 1001 is in error_sending_to_warehouse (error) since 2025-10-01T...`."""
    what = f"{state.vendor} {state.resource} {state.ident}"
    if not state.found:
        return f"{what} was not found"
    shown = state.raw_status or "?"
    if state.status and state.status != state.raw_status:
        shown += f" ({state.status})"
    since = f" since {state.since}" if state.since else ""
    return f"{what} is in {shown}{since}"


def outcome_message(outcome: Outcome, state: RecordState, target_states: Iterable[str]) -> str:
    if outcome == "failed":
        return f"{describe(state)}: a failure state"
    return f"{describe(state)}: reached a target state ({', '.join(target_states)})"


def not_found_message(state: RecordState, deadline: str) -> str:
    return (
        f"{describe(state)}, and the sensor's not_found_timeout ran out at {deadline}: "
        "check the identifier (waiting longer would not make a mistyped one appear)"
    )


class FulfillmentStateTrigger(BaseTrigger):
    """Polls one record's state until it matches a target or a failure state; fires one event.

    :param conn_id: a DropStream, DCL or Stream connection (the hook is chosen by its type).
    :param resource: "order" or "shipment".
    :param ident: order id (DCL: order number; Stream: id or reference number) or tracking number.
    :param target_states: raw or normalized states that end the wait successfully.
    :param failure_states: raw or normalized states that end it as a failure.
    :param poke_interval: seconds between two polls.
    :param not_found_deadline: ISO-8601 instant; if the vendor still does not know the record then,
        the trigger fires a "failed" event (a mistyped id ends the wait instead of lasting the timeout).

    Event payload: ``{"status": "ok" | "failed" | "error", "message": str, "state": RecordState dict
    or None, "conn_id", "resource", "ident"}``. Errors (bad connection, exhausted retries) become an
    "error" event carrying the error's message, which the HTTP core keeps free of secrets.
    """

    def __init__(
        self,
        conn_id: str,
        resource: str,
        ident: str,
        target_states: Iterable[str],
        failure_states: Iterable[str] = (),
        poke_interval: float = 60.0,
        not_found_deadline: str | None = None,
    ) -> None:
        super().__init__()
        if resource not in RESOURCES:
            raise ValueError(f"resource must be 'order' or 'shipment', got {resource!r}")
        if not str(ident).strip():
            raise ValueError(f"an empty {resource} identifier was given")
        self.conn_id = conn_id
        self.resource = resource
        self.ident = str(ident).strip()
        self.target_states = normalize_states(target_states, "target_states")
        self.failure_states = normalize_states(failure_states, "failure_states")
        if not self.target_states:
            raise ValueError("target_states must name at least one state")
        self.poke_interval = float(poke_interval)
        if self.poke_interval < 0:
            raise ValueError(f"poke_interval must not be negative, got {poke_interval}")
        self.not_found_deadline = not_found_deadline
        self._deadline = None if not_found_deadline is None else datetime.fromisoformat(not_found_deadline)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "conn_id": self.conn_id,
                "resource": self.resource,
                "ident": self.ident,
                "target_states": list(self.target_states),
                "failure_states": list(self.failure_states),
                "poke_interval": self.poke_interval,
                "not_found_deadline": self.not_found_deadline,
            },
        )

    def _event(self, status: str, message: str, state: RecordState | None) -> TriggerEvent:
        return TriggerEvent(
            {
                "status": status,
                "message": message,
                "state": None if state is None else state.to_dict(),
                "conn_id": self.conn_id,
                "resource": self.resource,
                "ident": self.ident,
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_fulfillment.hooks import aget_hook

        hook = None
        event: TriggerEvent | None = None
        try:
            hook = await aget_hook(self.conn_id)
            polls = 0
            while event is None:
                state = await hook.aget_state(self.resource, self.ident)
                polls += 1
                outcome = match_state(state, self.target_states, self.failure_states)
                if outcome is not None:
                    event = self._event(outcome, outcome_message(outcome, state, self.target_states), state)
                    break
                if not state.found and self._deadline is not None and datetime.now(UTC) >= self._deadline:
                    message = not_found_message(state, self.not_found_deadline or "")
                    event = self._event("failed", f"connection '{self.conn_id}': {message}", state)
                    break
                if not state.found:
                    self.log.info("%s; waiting (poll %d)", describe(state), polls)
                else:
                    self.log.info(
                        "%s; waiting for %s (poll %d)", describe(state), ", ".join(self.target_states), polls
                    )
                await asyncio.sleep(self.poke_interval)
        except Exception as error:  # noqa: BLE001 - any failure must reach the task as an event
            message = f"connection '{self.conn_id}': {type(error).__name__}: {error}"
            if getattr(error, "conn_id", None) == self.conn_id:
                message = f"{type(error).__name__}: {error}"  # it already names the connection
            event = self._event("error", message, None)
        finally:
            if hook is not None and "http" in hook.__dict__:
                try:
                    await hook.http.aclose()
                except Exception:  # noqa: BLE001 - closing must not hide the outcome
                    log.debug("closing the async client failed", exc_info=True)
        yield event
