# SPDX-License-Identifier: LGPL-2.1-or-later
"""Enter a mkosi-sandbox sandbox in this process, as mkosi's own ``mkosi.sandbox.enter()`` does.

Pure Python over ctypes: the work is done by ``libmkosi-sandbox.so`` (the same stages as the
``mkosi-sandbox`` binary, stopping before the exec), found beside this file or at
``$MKOSI_SANDBOX_LIBRARY``, and loaded at import (ImportError when it cannot be).

    import mkosi_sandbox
    mkosi_sandbox.enter(["--ro-bind", "/usr", "/usr", "--proc", "/proc", "--become-root"])

``enter(options)`` takes the binary's options without a command and applies all of them to the
calling process; it raises ``OSError(errno, message)`` with the binary's one line. It can be
called once per process (in a forked child, as mkosi's ``fork_and_wait()`` does). With
``--unshare-pid`` the process forks: this process waits and exits with the child's status, the
child returns from ``enter()`` inside the new PID namespace (PID 2, beside an init that reaps
orphans).
``--setenv``, ``--unsetenv`` and ``--pack-fds``' variables reach ``os.environ`` as well as the C
environment. A user namespace (or ``--unshare-pid``) needs a single-threaded process.
"""

import ctypes
import os
from collections.abc import Sequence

__all__ = ["enter", "library_path"]

_MESSAGE = 8192


def library_path() -> str:
    """The shared library this module uses."""
    return os.environ.get("MKOSI_SANDBOX_LIBRARY") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "libmkosi-sandbox.so"
    )


def _load() -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL(library_path())
    except OSError as e:
        # Not importable, then: callers that test for the module catch ImportError.
        raise ImportError(f"mkosi_sandbox: cannot load {library_path()}: {e}") from e
    lib.mkosi_sandbox_enter.argtypes = (
        ctypes.POINTER(ctypes.c_char_p),
        ctypes.c_size_t,
        ctypes.c_char_p,
        ctypes.c_size_t,
    )
    lib.mkosi_sandbox_enter.restype = ctypes.c_int
    return lib


# Loaded at import, in the parent: a child that enters right after a fork (a preexec_fn, mkosi's
# fork_and_wait()) then pays for no dlopen().
_lib = _load()
# The C library's `environ` itself (in_dll maps the object onto the variable: it reads its value).
_environ = ctypes.POINTER(ctypes.c_char_p).in_dll(ctypes.CDLL(None), "environ")


def _sync_environ() -> None:
    """Make os.environ what the C environment now is (the library changed the latter)."""
    cenv = _environ
    now: dict[bytes, bytes] = {}
    i = 0
    while cenv and cenv[i] is not None:
        name, eq, value = cenv[i].partition(b"=")
        # An entry without "=" is no variable (CPython's os.environ leaves it out too); the first
        # entry of a repeated name is its value, as getenv() answers.
        if eq:
            now.setdefault(name, value)
        i += 1
    for name in [n for n in os.environb if n not in now]:
        del os.environb[name]
    for name, value in now.items():
        if os.environb.get(name) != value:
            os.environb[name] = value


def enter(options: Sequence[str]) -> None:
    """Enter the sandbox that ``options`` describe (no command) in this process."""
    lib = _lib
    args = [os.fsencode(o) for o in options]
    argv = (ctypes.c_char_p * (len(args) + 1))(*args, None)
    message = ctypes.create_string_buffer(_MESSAGE)
    errno = lib.mkosi_sandbox_enter(argv, len(args), message, _MESSAGE)
    if errno != 0:
        raise OSError(errno, os.fsdecode(message.value))
    _sync_environ()
