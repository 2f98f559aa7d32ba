"""Warm start for stage processes: a fork server that pays the heavy imports once per pipeline run.

Every DVC stage is a fresh ``python stages/<x>.py`` process, and importing sentence-transformers (torch,
transformers, scipy...) costs seconds per process. ``python -m embedlab.warm run -- dvc repro`` (``make repro``)
applies the *zygote* pattern (Android's app start-up, ``multiprocessing``'s forkserver): a private server imports the
heavy third-party libraries once, the command runs with ``$EMBEDLAB_WARM`` naming the server's unix socket, and
:func:`delegate` (called first thing by :func:`embedlab.errors.run_stage`) sends the stage's argv, cwd, environment
and stdin/stdout/stderr (``SCM_RIGHTS``) to the server, which forks a child that becomes the stage; the stage
process exits with the child's status. :func:`delegate` uses only the standard library, so a stage still starts in
milliseconds, and returns ``None`` (run the stage in this process, as without a server) whenever it cannot be served.

The server is single-threaded (a ``selectors`` loop) because ``fork()`` copies only the calling thread: a lock held
by another thread at fork time would stay locked forever in the child. For the same reason it never runs a torch op
and imports no ``embedlab`` module but this one; the child drops this one before it runs the script, which imports
the library from its own checkout (``dvc exp run`` works in temporary copies).

Why the server refuses some requests: a child has the server's interpreter and imports, so it behaves as the
server's environment says, not as its caller's. Which libraries exist depends on the interpreter's environment
(``sys.prefix``, ``sys.path``: a venv's ``python`` and the base interpreter it was made from are the same binary, but
only one of them imports ``datasets``), and libraries read configuration from the environment *at import time*
(``HF_HUB_OFFLINE``, ``OMP_NUM_THREADS``, the locale...). A caller whose interpreter environment, flags or
import-time variables differ from the server's runs in its own process instead: it fails or succeeds as without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import struct
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

ENV_SOCKET = "EMBEDLAB_WARM"
ENV_VERBOSE = "EMBEDLAB_WARM_VERBOSE"

# fmt: off
# What `run` imports once (`--preload` replaces it): what the stages import.
DEFAULT_PRELOAD: tuple[str, ...] = (
    "torch", "transformers", "sentence_transformers", "sentence_transformers.sentence_transformer.evaluation",
    "sentence_transformers.cross_encoder", "datasets", "pandas", "pyarrow.parquet", "scipy.stats", "sklearn.metrics",
    "accelerate", "dvclive",
)
# Environment variables read at import time by the preloaded libraries, or by the interpreter, the dynamic loader,
# OpenMP/BLAS when their shared objects load; beyond the obvious: libgomp/Intel OpenMP and OpenBLAS read KMP_, GOMP_,
# OPENBLAS_, transformers USE_TORCH &c., huggingface_hub derives its cache from XDG_CACHE_HOME (and HOME), the locale
# picks the stdio encoding, and tqdm, dvclive, scikit-learn and numexpr read theirs when imported.
SENSITIVE_PREFIXES: tuple[str, ...] = (
    "HF_", "TRANSFORMERS_", "TORCH", "PYTORCH_", "OMP_", "MKL_", "CUDA_", "TOKENIZERS_", "PYTHON", "LD_", "KMP_",
    "GOMP_", "OPENBLAS_", "USE_", "XDG_", "LC_", "TQDM_", "DVCLIVE_", "SKLEARN_", "NUMEXPR_",
)
# fmt: on
SENSITIVE_NAMES = frozenset({"SENTENCE_TRANSFORMERS_HOME", "HOME", "LANG", "LANGUAGE", "TMPDIR"})

FORWARDED_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

READY_TIMEOUT_S = 300.0  # preloading takes ~5-8 s; a server still not ready after this is wedged: run without it
CONNECT_TIMEOUT_S = 5.0
# Time allowed between sending a request and hearing the child's pid (or a refusal). The server answers right after
# fork(), so this only trips when it is wedged; the client then runs the stage itself.
HANDSHAKE_TIMEOUT_S = 60.0
REAP_INTERVAL_S = 0.05  # how often the server looks for finished children (waitpid WNOHANG) between requests
MAX_REQUEST_BYTES = 64 << 20

_HEADER = struct.Struct("!Q")
_PR_SET_PDEATHSIG = 1
# `run`'s private directory: its pid in the name, so that a later `run` can remove it if this one was killed (#16).
_DIR_PREFIX = "embedlab-warm-"
_DIR_NAME = re.compile(re.escape(_DIR_PREFIX) + r"(\d+)-")
# How `run` starts the server: this file's own checkout first on sys.path, and a cwd (the private directory) where no
# stray file can shadow a preloaded module.
_BOOT = "import sys; sys.path[0] = sys.argv.pop(1); from embedlab.warm import _serve; sys.exit(_serve(*sys.argv[1:]))"


def _note(message: str) -> None:
    print(f"embedlab.warm: {message}", file=sys.stderr, flush=True)


def sensitive_env(env: Mapping[str, str]) -> dict[str, str]:
    """The part of ``env`` that libraries read at import time (see the module docstring)."""
    return {k: v for k, v in env.items() if k in SENSITIVE_NAMES or k.startswith(SENSITIVE_PREFIXES)}


def _identity(env: Mapping[str, str]) -> dict[str, Any]:
    """What must be equal in a caller and the server for a forked child to behave as the caller would (JSON-ready).

    ``sys.path`` is compared apart (:meth:`_Server._refusal`): the caller's has the script's own additions.
    """
    return {
        "interpreter": os.path.realpath(sys.executable),
        "sys.prefix": sys.prefix,
        "sys.exec_prefix": sys.exec_prefix,
        "sys.flags": list(sys.flags),  # -O, -B, -I, ... and their PYTHON* variables
        "import-time environment": sensitive_env(env),
        "niceness": os.nice(0),
        "CPU affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }


# --------------------------------------------------------------------------------------------------------- client


def delegate(entry: Callable[..., object] | None = None) -> int | None:
    """Run this process's script in a child of the warm server and return its exit status.

    ``None`` means "run it yourself": ``$EMBEDLAB_WARM`` is unset, the process was not started as ``python SCRIPT``
    (or ``entry`` is not defined in ``__main__``: a test calling ``run_stage``), the server cannot be reached, or it
    refused. Refusals are silent unless ``$EMBEDLAB_WARM_VERBOSE`` is set; after one, ``EMBEDLAB_WARM`` is removed
    from the environment so that the stage's own subprocesses do not ask again.

    SIGINT, SIGTERM and SIGHUP received here are forwarded to the child; if this process is killed outright, the
    server sees the connection close and kills the child's process group. A child killed by signal N gives 128+N.
    """
    import threading

    path = os.environ.get(ENV_SOCKET)
    if not path:
        return None
    main_module = sys.modules.get("__main__")
    script = getattr(main_module, "__file__", None)
    if entry is not None and getattr(entry, "__module__", None) != "__main__":
        return None  # a library call (tests, notebooks), not a stage script's entry point
    if getattr(main_module, "__spec__", None) is not None or not script or not os.path.isfile(script):
        return _fall_back("not started as `python SCRIPT`")
    if threading.current_thread() is not threading.main_thread():
        return _fall_back("not in the main thread, which alone can forward signals")
    try:
        for fd in (0, 1, 2):
            os.fstat(fd)
        request = _request(os.path.abspath(script))
    except (OSError, TypeError, ValueError) as err:
        return _fall_back(f"cannot describe this process: {err}")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock, sock.makefile("rb") as answers:
        # Until the child's pid is known, signals to forward wait; after a refusal they reach this process instead,
        # as if they had come a moment later.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)
        saved: dict[int, Any] = {}
        try:
            try:
                sock.settimeout(CONNECT_TIMEOUT_S)
                sock.connect(path)
                sent = socket.send_fds(sock, [request], [0, 1, 2])
                if sent < len(request):  # never an empty send: it fails once a refusing server has closed
                    sock.sendall(request[sent:])
                sock.settimeout(HANDSHAKE_TIMEOUT_S)
                first = json.loads(answers.readline() or b'{"refused": "the server closed the connection"}')
            except (OSError, ValueError) as err:
                first = {"refused": f"no answer from {path}: {err}"}
            if not isinstance(first.get("pid"), int):
                return _fall_back(str(first.get("refused", first)))
            pid = first["pid"]
            if os.environ.get(ENV_VERBOSE):
                _note(f"running in warm child {pid}")
            for signum in FORWARDED_SIGNALS:  # an ignored one (nohup, `cmd &`) stays ignored in the child
                if not _is_ignored(signum):
                    saved[signum] = signal.signal(signum, lambda signum, _frame: _kill(pid, signum))
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        try:
            sock.settimeout(None)
            last = json.loads(answers.readline() or b"{}")
        except (OSError, ValueError):
            last = {}
        finally:
            for signum, handler in saved.items():
                signal.signal(signum, signal.SIG_DFL if handler is None else handler)
    if not isinstance(last.get("status"), int):
        _note("the warm server went away before the stage finished")
        return 1
    code = last["status"]
    return code if code >= 0 else 128 - code


def _fall_back(reason: str) -> None:
    if os.environ.get(ENV_VERBOSE):
        _note(f"running in-process ({reason})")
    os.environ.pop(ENV_SOCKET, None)
    return None


def _request(script: str) -> bytes:
    umask = os.umask(0o022)
    os.umask(umask)
    payload = {
        "script": script,
        "argv": list(sys.argv),
        "orig_argv": list(sys.orig_argv),
        # `python OPTIONS SCRIPT ARGS`: the options (-X importtime, -u, ...), which sys.flags does not all show
        "options": sys.orig_argv[1 : len(sys.orig_argv) - len(sys.argv)],
        "executable": sys.executable,
        "path": list(sys.path),
        "identity": _identity(os.environ),
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "umask": umask,
        "ignored_signals": [int(s) for s in signal.valid_signals() if _is_ignored(s)],
    }
    body = json.dumps(payload).encode()
    return _HEADER.pack(len(body)) + body


def _is_ignored(signum: int) -> bool:
    try:
        return signal.getsignal(signum) is signal.SIG_IGN
    except (OSError, ValueError):
        return False


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


# --------------------------------------------------------------------------------------------------------- server


class _Forked(BaseException):
    """Raised in a freshly forked child to unwind the server's loop, so that the stage runs from :func:`_serve`'s
    level and the interpreter ends the child as it ends any Python process (non-daemon threads joined, atexit
    callbacks run, stdio flushed, death by SIGINT after an uncaught KeyboardInterrupt): no private CPython call
    (``threading._shutdown``, ``atexit._run_exitfuncs``) imitates that."""

    def __init__(self, request: dict[str, Any], fds: list[int]) -> None:
        super().__init__()
        self.request, self.fds = request, fds


def _serve(path: str, preload: str) -> int:
    """The server process (started by :func:`run`): import ``preload``, then fork a child per request on ``path``.

    Its stdin is one end of a socketpair whose other end only ``run`` holds: the server says "ready" on it once it
    listens, and stops at end-of-file there, that is when ``run`` closes it or dies, even by SIGKILL (#16).
    """
    import time

    control = socket.socket(fileno=os.dup(0))
    start_env = dict(os.environ)  # what requests are compared with: before any import can change it
    modules = [m for m in preload.split(",") if m]
    started = time.perf_counter()
    loaded = _preload(modules)
    elapsed = time.perf_counter() - started
    server = _Server(path, control, start_env, added_env={k: v for k, v in os.environ.items() if k not in start_env})
    _note(f"ready on {path}: {len(loaded)}/{len(modules)} modules preloaded in {elapsed:.1f}s (pid {server.pid})")
    forked: _Forked | None = None
    try:
        control.sendall(b"ready\n")
        server.loop()
    except _Forked as exc:
        forked = exc
    finally:
        if os.getpid() == server.pid:
            server.close()
    if forked is None:
        return 0
    forked.__traceback__ = None  # the server's frames, unwound
    return _child(forked.request, forked.fds, server)


def _preload(modules: Sequence[str]) -> list[str]:
    import gc
    import importlib

    # torch.cuda.is_available() would initialise the CUDA driver, which a forked child cannot use; with this
    # variable it asks NVML instead, should a preloaded library check for a GPU at import time.
    nvml_set = "PYTORCH_NVML_BASED_CUDA_CHECK" not in os.environ
    if nvml_set:
        os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "1"
    loaded = []
    try:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception as err:  # a missing optional library must not stop the others
                _note(f"skipping preload of {name}: {type(err).__name__}: {err}")
            else:
                loaded.append(name)
    finally:
        if nvml_set:
            os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)
    gc.collect()
    gc.freeze()  # the preloaded objects stay shared with the children: a collection would touch (copy) their pages
    return loaded


def _fork_hazard() -> str | None:
    """Why children forked from this server would be unsafe, if they would (then every request is refused)."""
    import threading

    cuda = getattr(sys.modules.get("torch"), "cuda", None)
    if cuda is not None and cuda.is_initialized():
        return "CUDA was initialised in the server while preloading; a forked child could not use it"
    with contextlib.suppress(OSError), open("/proc/self/maps") as maps:
        if "libcuda.so" in maps.read():
            return "the CUDA driver was loaded in the server while preloading; a forked child could not use it"
    if threading.active_count() > 1:  # a Python thread may hold a lock (logging's, an import lock) at fork time
        names = ", ".join(t.name for t in threading.enumerate() if t is not threading.current_thread())
        _note(f"warning: Python threads running after preloading ({names}); a child gets only the forking one")
    return None


class _Server:
    """The zygote: a ``selectors`` loop over the control socket, the listener and the callers waiting; no threads."""

    def __init__(self, path: str, control: socket.socket, start_env: dict[str, str], added_env: dict[str, str]):
        import selectors

        self.path, self.control, self.added_env = path, control, added_env
        self.identity = json.loads(json.dumps(_identity(start_env)))
        self.path_tail = sys.path[1:]  # a child's sys.path after its script's directory
        self.hazard = _fork_hazard()
        if self.hazard:
            _note(f"every request will run in its caller's process: {self.hazard}")
        self.verbose = bool(start_env.get(ENV_VERBOSE))
        self.pid = os.getpid()
        self.libc = _libc()
        self.children: dict[int, socket.socket | None] = {}  # pid: its caller's connection (None: caller gone)
        # No peer-credential check: the socket is in run's 0700 directory, so only this user can connect.
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(64)
        self.listener.setblocking(False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, "listener")
        self.selector.register(control, selectors.EVENT_READ, "control")

    def loop(self) -> None:
        while True:
            for key, _ in self.selector.select(timeout=REAP_INTERVAL_S):
                if key.data == "control":  # run sends nothing: readable means closed (run ended, or was killed)
                    return
                if key.data == "listener":
                    self._accept()
                else:  # a caller sends nothing after its request: readable means it exited (or was killed)
                    self._caller_gone(key.data)
            self._reap()

    def _accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        fds: list[int] = []
        try:
            sock.settimeout(CONNECT_TIMEOUT_S)  # a stage sends its request at once; this only trips if it is wedged
            data, fds, flags, _ = socket.recv_fds(sock, 1 << 16, 3)
            if len(data) < _HEADER.size or flags & getattr(socket, "MSG_CTRUNC", 0):
                raise ValueError("truncated")
            (size,) = _HEADER.unpack_from(data)
            if size > MAX_REQUEST_BYTES:
                raise ValueError(f"{size} bytes")
            body = bytearray(data[_HEADER.size :])
            while len(body) < size:
                chunk = sock.recv(size - len(body))
                if not chunk:
                    raise ValueError("truncated")
                body += chunk
            request = json.loads(body)
            reason = self._refusal(request, fds)
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
            request, reason = {}, f"malformed request: {err}"
        if reason is None:
            self._fork(sock, request, fds)
            return
        if self.verbose:
            _note(f"refused {request.get('script', '?')}: {reason}")
        _send(sock, {"refused": reason})
        sock.close()
        _close_fds(fds)

    def _refusal(self, request: dict[str, Any], fds: list[int]) -> str | None:
        """Why this request must run in its caller's process, or None (the module docstring says why)."""
        if self.hazard:
            return self.hazard
        if len(fds) != 3:
            return "stdin/stdout/stderr were not passed"
        if request["options"]:
            return f"interpreter options {' '.join(request['options'])} (the server runs without any)"
        theirs = request["identity"]
        for key, mine in self.identity.items():
            if theirs.get(key) == mine:
                continue
            if key == "import-time environment":
                names = sorted(k for k in theirs[key].keys() | mine.keys() if theirs[key].get(k) != mine.get(k))
                return f"import-time environment differs from the server's: {', '.join(names)}"
            return f"{key} {theirs.get(key)} is not the server's {mine}"
        # The caller's sys.path: what its script added (the child's script adds it again), the script's directory,
        # then what the interpreter built from its prefix, PYTHONPATH and .pth files, which must be the server's.
        path, tail = request["path"], self.path_tail
        if len(path) <= len(tail) or path[len(path) - len(tail) :] != tail:
            return f"sys.path {path} does not end as the server's {tail}"
        if not os.path.isabs(request["script"]) or not os.path.isdir(request["cwd"]):
            return "script path not absolute or cwd missing"
        return None

    def _fork(self, sock: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
        import selectors

        # Forwarded signals stay blocked across fork() until the child has its caller's dispositions: one arriving
        # in between would otherwise be handled as this server handles it.
        signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()  # or the child would write this process's buffered output a second time
        try:
            pid = os.fork()
        except OSError as err:
            _send(sock, {"refused": f"fork failed: {err}"})
            sock.close()
            return
        finally:
            if os.getpid() == self.pid:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
                _close_fds(fds)
        if pid == 0:
            sock.close()
            raise _Forked(request, fds)
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # also done by the child; whichever runs first wins the race with killpg
        self.children[pid] = sock
        self.selector.register(sock, selectors.EVENT_READ, pid)
        if not _send(sock, {"pid": pid}):
            self._caller_gone(pid)

    def _caller_gone(self, pid: int) -> None:
        """The caller exited or was killed without waiting: its child's whole process group goes too."""
        if self.children.get(pid) is not None:
            _killpg(pid, signal.SIGKILL)
            self._hang_up(pid, None)

    def _hang_up(self, pid: int, status: int | None) -> None:
        sock = self.children[pid]
        if sock is not None:
            self.selector.unregister(sock)
            if status is not None:
                _send(sock, {"status": status})
            sock.close()
        self.children[pid] = None

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.children:
                self._hang_up(pid, os.waitstatus_to_exitcode(status))
                del self.children[pid]

    def close_inherited(self) -> None:
        """In a child: close the server's sockets (control, listener, every other caller's connection)."""
        self.selector.close()
        for sock in [self.listener, self.control, *self.children.values()]:
            if sock is not None:
                sock.close()

    def close(self) -> None:
        """Stop: kill the children still running, drop their callers, remove the socket and run's directory."""
        for pid in list(self.children):
            _killpg(pid, signal.SIGKILL)
            self._hang_up(pid, None)
        for pid in self.children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.children.clear()
        self.selector.close()
        self.listener.close()
        self.control.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):  # if run was killed outright, nobody else removes it (#16)
            os.rmdir(os.path.dirname(self.path))


def _send(sock: socket.socket, message: dict[str, Any]) -> bool:
    try:
        sock.sendall(json.dumps(message).encode() + b"\n")
    except OSError:
        return False
    return True


def _killpg(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        _kill(pgid, signum)


def _close_fds(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _libc() -> Any:
    import ctypes

    with contextlib.suppress(OSError):
        return ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
    return None


# ---------------------------------------------------------------------------------------------------------- child


def _child(request: dict[str, Any], fds: list[int], server: _Server) -> int:
    """Become the caller's stage process and run its script as ``__main__``; its status, or its exception raised.

    Called with the server's frames unwound (:class:`_Forked`): an exception or ``SystemExit`` from the script
    reaches the interpreter's top level, which reports it and exits as it would after ``python SCRIPT``.
    """
    os.setpgid(0, 0)  # one group per stage, so the server can kill the stage with all its subprocesses
    if server.libc is not None:
        server.libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # die with the server...
    if os.getppid() != server.pid:
        os._exit(1)  # ... including when it died before prctl ran (nothing of the stage's to clean up yet)
    server.close_inherited()
    _reset_signals(set(request["ignored_signals"]))
    _take_stdio(fds)
    _become(request, server.added_env)
    script = request["script"]
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
    try:
        _exec_main(script)
    except SystemExit:
        raise
    except BaseException:
        sys.excepthook = _from_script(sys.excepthook, script)
        raise
    return 0


def _reset_signals(ignored: set[int]) -> None:
    """Signal dispositions of a fresh interpreter started by the caller (still blocked: unblocked by the script)."""
    for signum in signal.valid_signals():
        if signum in (signal.SIGKILL, signal.SIGSTOP):
            continue
        if signum in ignored:
            wanted: Any = signal.SIG_IGN
        elif signum == signal.SIGINT:
            wanted = signal.default_int_handler
        else:
            wanted = signal.SIG_DFL
        with contextlib.suppress(OSError, ValueError):
            if signal.getsignal(signum) is not wanted:
                signal.signal(signum, wanted)


def _take_stdio(fds: list[int]) -> None:
    """The caller's fds become 0, 1, 2, with new ``sys.std*`` objects made as CPython made the server's at start-up.

    Encoding and buffering can be the server's: the caller's locale and PYTHON* variables are the same (or refused).
    """
    import io

    old = [sys.stdin, sys.stdout, sys.stderr, sys.__stdin__, sys.__stdout__, sys.__stderr__]
    unbuffered = bool(getattr(sys.__stdout__, "write_through", False))  # PYTHONUNBUFFERED
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    _close_fds(fds)
    new = []
    for fd, like in enumerate(old[3:]):
        raw = io.FileIO(fd, "w" if fd else "r", closefd=False)
        raw.name = f"<{('stdin', 'stdout', 'stderr')[fd]}>"  # type: ignore[misc]
        writes_through = unbuffered and fd > 0  # stdin is buffered even then
        buffer: Any = raw if writes_through else (io.BufferedWriter if fd else io.BufferedReader)(raw)
        line_buffering = fd > 0 and not writes_through and (fd == 2 or raw.isatty())
        encoding, errors = getattr(like, "encoding", None) or "utf-8", getattr(like, "errors", None) or "strict"
        stream = io.TextIOWrapper(buffer, encoding, errors, "\n", line_buffering, writes_through)
        stream.mode = raw.mode  # type: ignore[misc]
        new.append(stream)
    sys.stdin, sys.stdout, sys.stderr = sys.__stdin__, sys.__stdout__, sys.__stderr__ = new
    # Loggers configured at import time (transformers' does) hold the server's stream objects: point them here.
    logging = sys.modules.get("logging")
    if logging is not None:
        replace = {id(o): n for o, n in zip(old, new * 2, strict=True) if o is not None}
        for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
            for handler in getattr(logger, "handlers", []):
                stream = getattr(handler, "stream", None)
                if isinstance(handler, logging.StreamHandler) and id(stream) in replace:
                    handler.stream = replace[id(stream)]


def _become(request: dict[str, Any], added_env: dict[str, str]) -> None:
    """Take the caller's cwd, environment, argv and umask; forget this checkout's embedlab."""
    import importlib

    os.chdir(request["cwd"])
    os.umask(int(request["umask"]))
    env = dict(request["env"])
    # Without the socket variable, the script's own run_stage runs its main here instead of delegating again.
    env.pop(ENV_SOCKET, None)
    for name, value in added_env.items():  # what the preloaded imports put in os.environ, as a direct run would
        env.setdefault(name, value)
    os.environ.clear()
    os.environ.update(env)
    # The script puts its own checkout's src/ first on sys.path and imports embedlab from there; a module cached here
    # could be another checkout's (dvc exp runs in temporary copies) or older code. Third-party modules stay.
    for name in [n for n in sys.modules if n == "embedlab" or n.startswith("embedlab.")]:
        del sys.modules[name]
    sys.argv = list(request["argv"])
    sys.orig_argv = list(request["orig_argv"])
    sys.executable = request["executable"]  # the same file (refused otherwise), as the caller names it
    sys.path[0] = os.path.dirname(os.path.realpath(request["script"]))  # what `python SCRIPT` puts first
    importlib.invalidate_caches()
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        numpy_random.seed()  # every child would otherwise draw the same numbers (`random` reseeds itself at fork)


def _exec_main(script: str) -> None:
    """What ``python SCRIPT`` does with ``SCRIPT``; not runpy.run_path, which would put the absolute path in argv[0]."""
    import builtins
    import types
    from importlib.machinery import SourceFileLoader

    with open(script, "rb") as file:
        source = file.read()
    code = compile(source, script, "exec", dont_inherit=True)
    module = types.ModuleType("__main__")
    module.__dict__.update(
        __file__=script, __cached__=None, __loader__=SourceFileLoader("__main__", script), __builtins__=builtins
    )
    sys.modules["__main__"] = module
    exec(code, module.__dict__)


def _from_script(hook: Callable[..., Any], script: str) -> Callable[..., None]:
    """``hook`` given the traceback ``python SCRIPT`` prints: from the script's first frame on, none of the server's."""

    def excepthook(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
        while tb is not None and tb.tb_frame.f_code.co_filename != script:
            tb = tb.tb_next
        hook(kind, exc.with_traceback(tb), tb)  # the default hook prints exc.__traceback__, not tb

    return excepthook


# ------------------------------------------------------------------------------------------------------------ run


def run(cmd: Sequence[str], preload: Sequence[str]) -> int:
    """Start a private server, run ``cmd`` with ``$EMBEDLAB_WARM`` set, stop the server; ``cmd``'s exit status.

    The server lives in a 0700 temp dir named after this process, in its own process group (a Ctrl-C at the terminal
    reaches ``cmd``, which decides how to stop, not the server under it). If the server fails to start, ``cmd`` runs
    without it. Directories left by a ``run`` killed outright together with its server are removed first (#16).
    """
    import shutil
    import subprocess
    import tempfile

    _remove_stale_dirs(tempfile.gettempdir())
    tmp = tempfile.mkdtemp(prefix=f"{_DIR_PREFIX}{os.getpid()}-")
    control, server_end = socket.socketpair()  # see _serve: "ready" comes back on it, closing it stops the server
    server: subprocess.Popen[bytes] | None = None
    try:
        env = {k: v for k, v in os.environ.items() if k != ENV_SOCKET}
        src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        argv = [sys.executable, "-c", _BOOT, src, os.path.join(tmp, "sock"), ",".join(preload)]
        group = {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}
        with server_end:
            server = subprocess.Popen(argv, stdin=server_end, cwd=tmp, env=env, **group)  # type: ignore[call-overload]
        control.settimeout(READY_TIMEOUT_S)
        try:
            ready = control.recv(16) == b"ready\n"  # one 6-byte send on a unix socket arrives whole
        except OSError:
            ready = False
        if ready:
            env[ENV_SOCKET] = os.path.join(tmp, "sock")
        else:
            _note(f"the server did not start (exit {server.poll()}); running without it")
        return _run_command(cmd, env)
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    finally:
        control.close()
        if server is not None:
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_stale_dirs(parent: str) -> None:
    """Remove this user's ``embedlab-warm-PID-*`` directories whose ``run`` (PID) is gone."""
    import shutil
    import stat

    with contextlib.suppress(OSError), os.scandir(parent) as entries:
        for entry in entries:
            match = _DIR_NAME.match(entry.name)
            if match is None or _alive(int(match[1])):
                continue
            with contextlib.suppress(OSError):
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid():
                    shutil.rmtree(entry.path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def _run_command(cmd: Sequence[str], env: dict[str, str]) -> int:
    """Run ``cmd``; SIGTERM/SIGHUP are passed on to it, SIGINT too unless the terminal already sent it to it."""
    import subprocess

    procs: list[subprocess.Popen[bytes]] = []
    pending: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        if signum == signal.SIGINT and _from_terminal():
            return
        if procs:
            _kill(procs[0].pid, signum)
        else:
            pending.append(signum)

    saved = {s: signal.signal(s, forward) for s in FORWARDED_SIGNALS if not _is_ignored(s)}
    try:
        try:
            procs.append(subprocess.Popen(list(cmd), env=env))
        except OSError as err:
            _note(f"cannot run {cmd[0]}: {err}")
            return 127 if isinstance(err, FileNotFoundError) else 126
        for signum in pending:
            _kill(procs[0].pid, signum)
        code = procs[0].wait()
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
    return code if code >= 0 else 128 - code


def _from_terminal() -> bool:
    """Whether this process is in the terminal's foreground group (then a Ctrl-C reached the whole group)."""
    for fd in (0, 1, 2):
        try:
            if os.isatty(fd):
                return os.tcgetpgrp(fd) == os.getpgrp()
        except OSError:
            continue
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m embedlab.warm run [--preload M,...] -- CMD [ARG...]``: see the module docstring."""
    import argparse

    args = list(sys.argv[1:] if argv is None else argv)
    split = args.index("--") if "--" in args else len(args)
    parser = argparse.ArgumentParser(
        prog="python -m embedlab.warm",
        usage="%(prog)s run [--preload M,...] -- CMD [ARG...]",
        description="Run CMD (dvc repro) with a private warm server for its stages (see embedlab/warm.py).",
    )
    parser.add_argument("command", choices=["run"], help="the one mode: run CMD with a private server")
    parser.add_argument("--preload", default=",".join(DEFAULT_PRELOAD), help="comma-separated modules to import once")
    opts = parser.parse_args(args[:split])
    if not args[split + 1 :]:
        parser.error("give the command after --, e.g. python -m embedlab.warm run -- dvc repro")
    return run(args[split + 1 :], [m.strip() for m in opts.preload.split(",") if m.strip()])


if __name__ == "__main__":
    sys.exit(main())
