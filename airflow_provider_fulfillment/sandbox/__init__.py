"""A faithful local emulator of the DropStream, DCL and Stream APIs, with fault injection.

One ASGI app serves the three APIs under ``/dropstream``, ``/dcl/api/v1`` and
``/stream/client_api/v2`` from a deterministic world generated from a seed (see :mod:`.world`), plus a
control API under ``/_control``. Run it with ``fulfillment-sandbox`` (see :mod:`.__main__`) or, in
tests, with :func:`.testing.run_sandbox`.
"""

from __future__ import annotations

from .app import DEFAULT_CREDENTIALS, SandboxApp, SandboxConfig
from .counters import Counters, RequestRecord
from .faults import Faults
from .world import DEFAULT_END, World

__all__ = [
    "DEFAULT_CREDENTIALS",
    "DEFAULT_END",
    "Counters",
    "Faults",
    "RequestRecord",
    "SandboxApp",
    "SandboxConfig",
    "World",
]
