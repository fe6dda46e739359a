"""Store locks: a SIGKILLed holder leaves no held lock; its owner record is reported as a stale lock and replaced."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from cai.errors import CaiError
from cai.store import Store

from tests.conftest import ROOT

HOLD = textwrap.dedent("""
    import sys, time
    from cai.store import Store
    with Store(sys.argv[1]).lock("shared"):
        print("held", flush=True)
        time.sleep(600)
""")


def start_holder(home):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(home)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_killed_holder_leaves_no_held_lock_and_its_record_is_broken(tmp_path, caplog):
    holder = start_holder(tmp_path)
    owner = tmp_path / "store" / ".locks" / "shared.owner"
    assert json.loads(owner.read_text())["pid"] == holder.pid
    with pytest.raises(CaiError, match=f"still held after 0.2 s by pid {holder.pid} on host"):
        with Store(tmp_path).lock("shared", timeout=0.2):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with caplog.at_level(logging.WARNING, logger="cai"):
        with Store(tmp_path).lock("shared", timeout=30):  # the kernel released the dead holder's lock
            assert json.loads(owner.read_text())["pid"] == os.getpid()
    assert f"broke the stale lock of pid {holder.pid}" in caplog.text and "(no longer running)" in caplog.text
    assert not owner.exists()


def test_a_waiter_is_told_who_holds_the_lock(tmp_path, caplog):
    holder = start_holder(tmp_path)
    waited = []
    try:
        with caplog.at_level(logging.INFO, logger="cai"):
            with pytest.raises(CaiError):
                with Store(tmp_path).lock("shared", wait_message=lambda: waited.append(1), timeout=0.7):
                    pass
    finally:
        holder.kill()
        holder.wait()
    assert waited == [1] and f"lock shared.lock is held by pid {holder.pid}" in caplog.text


def test_a_torn_owner_record_is_replaced(tmp_path, caplog):
    store = Store(tmp_path)
    (store.root / ".locks" / "k.owner").write_text('{"pid": 12')
    with caplog.at_level(logging.WARNING, logger="cai"):
        with store.lock("k"):
            pass
    assert "removed a torn owner record" in caplog.text and not (store.root / ".locks" / "k.owner").exists()
