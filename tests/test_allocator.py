"""The malloc arena cap: what it asks for, that it is set once and only on glibc, and its effect."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_fulfillment import allocator
from airflow_provider_fulfillment.allocator import (
    M_ARENA_MAX,
    cap_malloc_arenas,
    glibc_mallopt,
    wanted_arena_cap,
)


@pytest.mark.parametrize(
    ("environ", "cap"),
    [
        ({}, 2),
        ({"FULFILLMENT_MALLOC_ARENA_MAX": ""}, 2),
        ({"FULFILLMENT_MALLOC_ARENA_MAX": "4"}, 4),
        ({"FULFILLMENT_MALLOC_ARENA_MAX": "0"}, None),  # the opt-out
        ({"FULFILLMENT_MALLOC_ARENA_MAX": "-1"}, None),
        ({"MALLOC_ARENA_MAX": "8"}, None),  # the deployment's own setting wins
        ({"MALLOC_ARENA_MAX": "8", "FULFILLMENT_MALLOC_ARENA_MAX": "4"}, None),
    ],
)
def test_the_cap_asked_for(environ, cap):
    assert wanted_arena_cap(environ) == cap


def test_a_cap_that_is_no_number_leaves_the_allocator_alone(caplog):
    with caplog.at_level(logging.WARNING, logger="airflow_provider_fulfillment.allocator"):
        assert wanted_arena_cap({"FULFILLMENT_MALLOC_ARENA_MAX": "two"}) is None
    assert caplog.messages == [
        "FULFILLMENT_MALLOC_ARENA_MAX='two' is not a whole number; the allocator is left alone"
    ]


@pytest.fixture
def undecided(monkeypatch):
    """A process that has not decided yet, with a recording mallopt; yields the calls made."""
    calls: list[tuple[int, int]] = []

    def mallopt(option: int, value: int) -> int:
        calls.append((option, value))
        return 1

    monkeypatch.setattr(allocator, "_decided", False)
    monkeypatch.setattr(allocator, "_cap_set", None)
    monkeypatch.setattr(allocator, "glibc_mallopt", lambda: mallopt)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.delenv("FULFILLMENT_MALLOC_ARENA_MAX", raising=False)
    return calls


def test_the_cap_is_set_once_a_process(undecided):
    assert cap_malloc_arenas() == 2
    assert cap_malloc_arenas() == 2
    assert undecided == [(M_ARENA_MAX, 2)]


def test_the_opt_out_sets_nothing(undecided, monkeypatch):
    monkeypatch.setenv("FULFILLMENT_MALLOC_ARENA_MAX", "0")
    assert cap_malloc_arenas() is None
    assert undecided == []


def test_no_mallopt_off_glibc(monkeypatch):
    def no_glibc(name: str) -> str:
        raise ValueError(f"unrecognized configuration name {name!r}")

    monkeypatch.setattr(os, "confstr", no_glibc)
    assert glibc_mallopt() is None


# Counts the arenas malloc_info reports after six threads allocate at once (each would get its own).
ARENAS_OF_SIX_THREADS = """
import ctypes, re, threading
from airflow_provider_fulfillment.allocator import cap_malloc_arenas
cap_malloc_arenas()
libc = ctypes.CDLL(None)
libc.open_memstream.restype = ctypes.c_void_p
libc.open_memstream.argtypes = (ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_size_t))
libc.malloc_info.argtypes = (ctypes.c_int, ctypes.c_void_p)
libc.fclose.argtypes = (ctypes.c_void_p,)
together = threading.Barrier(6)
held = []
def allocate():
    held.append(bytes(200_000) + b"x")
    together.wait()
threads = [threading.Thread(target=allocate) for _ in range(6)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
text, size = ctypes.c_char_p(), ctypes.c_size_t()
stream = libc.open_memstream(ctypes.byref(text), ctypes.byref(size))
libc.malloc_info(0, stream)
libc.fclose(stream)
print(len(re.findall(rb'<heap nr=', text.value)))
"""


@pytest.mark.skipif(glibc_mallopt() is None, reason="glibc only")
@pytest.mark.parametrize(("opt_out", "arenas"), [("", 2), ("0", 7)])
def test_six_paging_threads_share_two_arenas_unless_opted_out(opt_out, arenas):
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    environ["FULFILLMENT_MALLOC_ARENA_MAX"] = opt_out
    done = subprocess.run(
        [sys.executable, "-c", ARENAS_OF_SIX_THREADS],
        env=environ,
        cwd=Path(__file__).parents[1],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == arenas  # the main arena and one per thread, or two in all
