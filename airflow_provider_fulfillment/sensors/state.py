"""`OrderStateSensor` and `ShipmentStateSensor`: wait until an order or a shipment reaches a state.

Both poke with the hook's `get_state`, succeed on a target state, and fail at once with
`AirflowFailException` (no retries: waiting longer will not un-error a record) on a failure state.
A record the vendor does not know (yet) is waited for, not failed: an order is often polled before it
reaches the vendor. In deferrable mode (the default follows `[operators] default_deferrable`) they
check once, then hand off to `FulfillmentStateTrigger` and resume in `execute_complete` with the
trigger's event, which carries everything needed (the sensor's own state is not kept across the
deferral under `airflow dags test`).

Both return the record's state (`RecordState.to_dict()`: vendor, resource, ident, found, raw_status,
status, since) as XCom.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from airflow_provider_fulfillment.hooks.base import RecordState
from airflow_provider_fulfillment.triggers.state import (
    EVENT_STATUSES,
    FulfillmentStateTrigger,
    describe,
    match_state,
    normalize_states,
    not_found_message,
    outcome_message,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_fulfillment.hooks.base import FulfillmentHook

DEFAULT_TARGET_STATES: tuple[str, ...] = ("shipped", "delivered")
DEFAULT_FAILURE_STATES: tuple[str, ...] = ("error",)


class _RecordStateSensor(BaseSensorOperator):
    """What both sensors share; subclasses fix `resource` and how the identifier is named."""

    resource: ClassVar[str]
    template_fields: Sequence[str] = ("ident", "target_states", "failure_states")
    ui_color = "#e8f0fb"

    def __init__(
        self,
        *,
        conn_id: str,
        ident: str | int,
        target_states: Iterable[str] | str = DEFAULT_TARGET_STATES,
        failure_states: Iterable[str] | str | None = DEFAULT_FAILURE_STATES,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        not_found_timeout: timedelta | float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.ident = ident
        if isinstance(not_found_timeout, int | float):
            not_found_timeout = timedelta(seconds=not_found_timeout)
        if not_found_timeout is not None and not_found_timeout < timedelta(0):
            raise ValueError(f"not_found_timeout must not be negative, got {not_found_timeout}")
        self.not_found_timeout = not_found_timeout
        # Kept as given (they are templated); checked again once rendered.
        self.target_states = normalize_states(target_states, "target_states")
        self.failure_states = normalize_states(failure_states, "failure_states")
        if not self.target_states:
            raise ValueError("target_states must name at least one state")
        self.deferrable = deferrable

    # ---------------------------------------------------------------------------------------
    def _ident(self) -> str:
        text = str(self.ident).strip() if self.ident is not None else ""
        if not text:
            raise AirflowFailException(
                f"{type(self).__name__}: an empty {self.resource} identifier was given"
            )
        return text

    def _hook(self) -> FulfillmentHook:
        from airflow_provider_fulfillment.hooks import get_hook

        # One hook (one client, one cached token) for all the pokes of a poke-mode run.
        hook = getattr(self, "_poke_hook", None)
        if hook is None:
            hook = get_hook(self.conn_id)
            self._poke_hook = hook
        return hook

    def _close_hook(self) -> None:
        hook = getattr(self, "_poke_hook", None)
        self._poke_hook = None
        if hook is not None:
            hook.close()

    def _check(self, hook: FulfillmentHook) -> RecordState | None:
        """The state when the wait is over (target reached); None to keep waiting; raises on failure."""
        state = hook.get_state(self.resource, self._ident())
        targets = normalize_states(self.target_states, "target_states")
        failures = normalize_states(self.failure_states, "failure_states")
        outcome = match_state(state, targets, failures)
        if outcome == "failed":
            raise AirflowFailException(
                f"connection '{self.conn_id}': {outcome_message(outcome, state, targets)}"
            )
        if outcome == "ok":
            self.log.info("%s", outcome_message(outcome, state, targets))
            return state
        deadline = None if state.found else self._not_found_deadline()
        if deadline is not None and datetime.now(UTC) >= deadline:
            raise AirflowFailException(
                f"connection '{self.conn_id}': {not_found_message(state, deadline.isoformat())}"
            )
        if not state.found:
            self.log.info("%s (yet); waiting", describe(state))
        else:
            self.log.info("%s; waiting for %s", describe(state), ", ".join(targets))
        return None

    def _not_found_deadline(self) -> datetime | None:
        """When a record the vendor does not know ends the wait: not_found_timeout after the first check."""
        if self.not_found_timeout is None:
            return None
        started = getattr(self, "_first_check", None)
        if started is None:
            started = self._first_check = datetime.now(UTC)
        return started + self.not_found_timeout

    def poke(self, context: Context) -> PokeReturnValue:
        state = self._check(self._hook())
        return PokeReturnValue(
            is_done=state is not None, xcom_value=None if state is None else state.to_dict()
        )

    def execute(self, context: Context) -> Any:
        try:
            if not self.deferrable:
                return super().execute(context)
            return self._check_then_defer(context)
        finally:
            self._close_hook()

    def _check_then_defer(self, context: Context) -> Any:
        # One synchronous check first: no deferral (and no triggerer round trip) when already there.
        try:
            done = self.poke(context)
        except AirflowFailException as error:
            if self.soft_fail or self.never_fail:
                flag = "soft_fail" if self.soft_fail else "never_fail"
                raise AirflowSkipException(f"Skipping ({flag} is set): {error}") from error
            raise
        if done.is_done:
            return done.xcom_value
        deadline = self._not_found_deadline()
        self.defer(
            trigger=FulfillmentStateTrigger(
                conn_id=self.conn_id,
                resource=self.resource,
                ident=self._ident(),
                target_states=normalize_states(self.target_states, "target_states"),
                failure_states=normalize_states(self.failure_states, "failure_states"),
                poke_interval=self.poke_interval,
                not_found_deadline=None if deadline is None else deadline.isoformat(),
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume from the trigger: return the record's state, or raise with the trigger's message."""
        if not isinstance(event, dict) or event.get("status") not in EVENT_STATUSES:
            raise AirflowException(
                f"{type(self).__name__}: the trigger sent an unexpected event {event!r}; "
                f"expected a dict whose status is one of {', '.join(EVENT_STATUSES)}"
            )
        status, message = event["status"], str(event.get("message") or "")
        if status == "error":
            raise AirflowException(f"waiting for {self.resource} {self.ident} failed: {message}")
        if status == "failed":
            prefix = "" if message.startswith("connection '") else f"connection '{self.conn_id}': "
            raise AirflowFailException(prefix + message)
        state = event.get("state")
        if not isinstance(state, dict) or not state.get("found"):
            raise AirflowException(
                f"{type(self).__name__}: the trigger reported success without a record state"
            )
        self.log.info("%s", message)
        return state


class OrderStateSensor(_RecordStateSensor):
    """Waits until an order reaches one of `target_states`; fails at once on a `failure_states` match.

    :param conn_id: a DropStream, DCL or Stream connection (its type picks the vendor).
    :param order_id: DropStream order id; DCL order number; Stream id or reference number. Templated.
    :param target_states: raw (`shipped`, DCL `"60"`) or normalized (`shipped`, `delivered`) states.
    :param failure_states: raw or normalized; default the normalized `error`. Empty: never fail early.
    :param deferrable: wait in the triggerer (default: `[operators] default_deferrable`).
    :param not_found_timeout: fail (no retries) when the vendor still does not know the record this
        long (a timedelta or seconds) after the first check; default None: wait until `timeout`.
        Counted in the sensor's process (poke mode, and across a deferral); in `mode="reschedule"` it
        starts again at each reschedule.

    Plus every `BaseSensorOperator` argument (`poke_interval`, `timeout`, `mode`, `soft_fail`...).
    Returns the order's state as a dict (XCom).
    """

    resource = "order"

    def __init__(
        self,
        *,
        conn_id: str,
        order_id: str | int,
        target_states: Iterable[str] | str = DEFAULT_TARGET_STATES,
        failure_states: Iterable[str] | str | None = DEFAULT_FAILURE_STATES,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(
            conn_id=conn_id,
            ident=order_id,
            target_states=target_states,
            failure_states=failure_states,
            deferrable=deferrable,
            **kwargs,
        )

    @property
    def order_id(self) -> str | int:
        return self.ident


class ShipmentStateSensor(_RecordStateSensor):
    """Waits until a shipment reaches one of `target_states`; fails at once on a `failure_states` match.

    :param conn_id: a DropStream, DCL or Stream connection (its type picks the vendor).
    :param tracking_number: the shipment's tracking number (DropStream). Templated.
    :param ident: instead of a tracking number, what the vendor identifies shipments by: DCL order
        number (the order's shipments), Stream id or reference number (a Stream order is its shipment).
    :param target_states: raw or normalized; default `shipped`, `delivered`.
    :param failure_states: raw or normalized; default the normalized `error`.
    :param deferrable: wait in the triggerer (default: `[operators] default_deferrable`).
    :param not_found_timeout: fail when the vendor still does not know the shipment this long after
        the first check (a mistyped tracking number fails then, not at `timeout`).
    :param not_found_timeout: fail (no retries) when the vendor still does not know the record this
        long (a timedelta or seconds) after the first check; default None: wait until `timeout`.
        Counted in the sensor's process (poke mode, and across a deferral); in `mode="reschedule"` it
        starts again at each reschedule.

    Returns the shipment's state as a dict (XCom).
    """

    resource = "shipment"

    def __init__(
        self,
        *,
        conn_id: str,
        tracking_number: str | None = None,
        ident: str | int | None = None,
        target_states: Iterable[str] | str = DEFAULT_TARGET_STATES,
        failure_states: Iterable[str] | str | None = DEFAULT_FAILURE_STATES,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        if (tracking_number is None) == (ident is None):
            raise ValueError("ShipmentStateSensor needs exactly one of tracking_number or ident")
        super().__init__(
            conn_id=conn_id,
            ident=tracking_number if tracking_number is not None else ident,  # type: ignore[arg-type]
            target_states=target_states,
            failure_states=failure_states,
            deferrable=deferrable,
            **kwargs,
        )

    @property
    def tracking_number(self) -> str | int:
        return self.ident


__all__ = ["OrderStateSensor", "ShipmentStateSensor"]
