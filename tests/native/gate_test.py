# SPDX-License-Identifier: MIT
"""What iogate's Python tests share: a scratch directory that a failure
leaves behind for a look, the child processes that a failure or the end of
a case kills, and the verdict helpers.

    from gate_test import CHILDREN, GUARD, ON_FAIL, check, fail, finish, scratch
    TMP = scratch("iogate_x_", "configurations")"""

import shutil
import subprocess
import sys
import tempfile

GUARD = 30  # seconds: only against hangs
CHILDREN = []  # processes started by a case; killed when it ends
ON_FAIL = []  # callables that print what a failure's reader needs (a daemon's log)
_scratch = {"dir": None, "what": "files"}


def scratch(prefix, what):
    """A new scratch directory; `what` names its contents in a failure's message."""
    _scratch["dir"] = tempfile.mkdtemp(prefix=prefix)
    _scratch["what"] = what
    return _scratch["dir"]


def _kill_children():
    """Kills what is still running; False when a child survives SIGKILL."""
    ok = True
    for p in CHILDREN:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(timeout=GUARD)
            except subprocess.TimeoutExpired:
                print(f"FAIL: {p.args} does not die after SIGKILL", flush=True)
                ok = False
    return ok


def fail(msg):
    print("FAIL: " + msg, flush=True)
    for show in ON_FAIL:
        try:
            show()
        except Exception as e:  # a failure's report must not hide the failure
            print(f"(could not show more: {e})", flush=True)
    print(f"({_scratch['what']} kept in {_scratch['dir']})", flush=True)
    _kill_children()
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def finish(case):
    """Runs case(); a timeout is a failure. The children are killed and,
    when the case passed, the scratch directory is removed."""
    try:
        case()
    except subprocess.TimeoutExpired as e:
        fail(f"timed out: {e}")
    finally:
        if not _kill_children():
            sys.exit(1)
    shutil.rmtree(_scratch["dir"], ignore_errors=True)
