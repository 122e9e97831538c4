"""tests/postgres.py: clusters left running by a hard-killed test run are swept at the next start,
and only those (other runs' clusters, live or starting, are left alone)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres import CLUSTER_PREFIX, OWNER_FILE, postgres_bin, sweep_stale_clusters

ROOT = Path(__file__).resolve().parent.parent


def _postmaster_pid(root: Path) -> int:
    return int((root / "data" / "postmaster.pid").read_text().split()[0])


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


@pytest.fixture
def temp_root() -> Iterator[Path]:
    """A temporary folder the server's user can enter (pytest's tmp_path is private to root)."""
    root = Path(tempfile.mkdtemp(prefix="sweep-test-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        sweep_stale_clusters(str(root))
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL server binaries not found")
def test_a_cluster_whose_test_run_was_killed_is_stopped_and_only_that_one(temp_root, postgres_server):
    tmp_path = temp_root
    # A run that starts a cluster and is killed (SIGKILL: no fixture teardown) before stopping it.
    child = textwrap.dedent(
        f"""
        import os, signal, sys, tempfile
        sys.path.insert(0, {str(ROOT)!r})
        tempfile.tempdir = {str(tmp_path)!r}
        from tests.postgres import start_postgres
        server = start_postgres()
        print(server.data.parent, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr
    stale = Path(done.stdout.strip())
    assert stale.parent == tmp_path and stale.name.startswith(CLUSTER_PREFIX)
    postmaster = _postmaster_pid(stale)
    assert _running(postmaster)
    # Beside it: a cluster folder of a run still alive (this one), and one not yet marked.
    live = tmp_path / f"{CLUSTER_PREFIX}live"
    live.mkdir()
    (live / OWNER_FILE).write_text((postgres_server.data.parent / OWNER_FILE).read_text())
    starting = tmp_path / f"{CLUSTER_PREFIX}starting"
    starting.mkdir()

    assert sweep_stale_clusters(str(tmp_path)) == [stale]
    assert not stale.exists()
    assert not _running(postmaster)
    assert live.exists() and starting.exists()
    assert postgres_server.data.exists()  # the session's own server is untouched
