"""Warm start for stage processes: a fork server that pays the heavy imports once per pipeline run.

Every DVC stage is a fresh ``python stages/<x>.py`` process, and importing sentence-transformers (torch,
transformers, scikit-learn, scipy...) costs seconds per process. This module applies the *zygote* pattern (Android's
app start-up, nailgun for the JVM, Python's own ``multiprocessing`` forkserver): one long-lived server imports the
heavy third-party libraries once, and for every stage it forks a child that already has them in memory. The
child takes over the calling process's argv, cwd, environment and stdin/stdout/stderr (passed over a unix socket with
``SCM_RIGHTS``), runs the stage script and hands its exit status back to the caller, which exits with it.

Pieces:

* :func:`delegate` is the client, called first thing by :func:`embedlab.errors.run_stage`. It uses only the standard
  library so that a stage still starts in milliseconds; it returns ``None`` (run the stage in this process, exactly as
  without a server) whenever ``$EMBEDLAB_WARM`` is unset, the server cannot be reached, or it refuses the request.
* :func:`serve` is the server: single-threaded (a ``selectors`` loop, children reaped with ``waitpid(WNOHANG)``)
  because ``fork()`` copies only the calling thread, and a lock held by another thread at fork time stays locked
  forever in the child. For the same reason it never runs a torch op (no intra-op thread pool, no CUDA context) and
  imports no ``embedlab`` module but this one.
* ``python -m embedlab.warm run [--preload m1,m2] -- CMD ARGS...`` starts a private server, runs ``CMD`` with
  ``EMBEDLAB_WARM`` pointing at it, and stops it however ``CMD`` ends; ``python -m embedlab.warm serve --socket PATH``
  keeps one server for several commands (export ``EMBEDLAB_WARM=PATH`` yourself).

The child drops every ``embedlab`` module from ``sys.modules`` before it runs the script: the script imports the
library from the checkout it puts on ``sys.path`` (``dvc exp run`` works in temporary copies), never the server's
(possibly older) code. Only third-party modules are shared.

Why the server refuses some requests: libraries read part of their configuration from the environment *at import
time* (huggingface_hub's ``HF_HUB_OFFLINE`` and cache paths, libgomp's ``OMP_NUM_THREADS``, the locale that picks the
encoding of ``sys.stdout``...). A child inherits the server's imports, so it would silently behave as the server's
environment says, not as its caller's. The server therefore compares those variables (and the interpreter and its
flags) with its own at start-up, and a caller that differs runs in its own process instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

ENV_SOCKET = "EMBEDLAB_WARM"
ENV_VERBOSE = "EMBEDLAB_WARM_VERBOSE"

DEFAULT_PRELOAD: tuple[str, ...] = (
    "torch",
    "transformers",
    "sentence_transformers",
    "sentence_transformers.sentence_transformer.evaluation",
    "sentence_transformers.cross_encoder",
    "datasets",
    "pandas",
    "pyarrow.parquet",
    "scipy.stats",
    "sklearn.metrics",
    "accelerate",
    "dvclive",
)

# Environment variables read at import time by the preloaded libraries (or by the interpreter, the dynamic loader,
# OpenMP/BLAS when their shared objects load). A request whose values differ from the server's is refused.
SENSITIVE_PREFIXES: tuple[str, ...] = (
    "HF_",
    "TRANSFORMERS_",
    "TORCH",
    "PYTORCH_",
    "OMP_",
    "MKL_",
    "CUDA_",
    "TOKENIZERS_",
    "PYTHON",
    "LD_",
    # beyond the obvious: libgomp/Intel OpenMP and OpenBLAS read these when loaded, transformers reads USE_TORCH &c.,
    # huggingface_hub derives its cache from XDG_CACHE_HOME (and HOME), the locale picks the stdio encoding
    "KMP_",
    "GOMP_",
    "OPENBLAS_",
    "USE_",
    "XDG_",
    "LC_",
    # read when tqdm's classes, dvclive, scikit-learn's config and numexpr are imported
    "TQDM_",
    "DVCLIVE_",
    "SKLEARN_",
    "NUMEXPR_",
)
SENSITIVE_NAMES = frozenset({"SENTENCE_TRANSFORMERS_HOME", "HOME", "LANG", "LANGUAGE", "TMPDIR"})
READY_TIMEOUT_S = 300.0  # preloading takes ~5-8 s; a server still not ready after this is wedged: run without it

FORWARDED_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

CONNECT_TIMEOUT_S = 5.0
# Time allowed between sending a request and hearing the child's pid (or a refusal). The server answers right after
# fork(), so this only trips when it is wedged; the client then runs the stage itself.
HANDSHAKE_TIMEOUT_S = 60.0
REAP_INTERVAL_S = 0.05
MAX_REQUEST_BYTES = 64 << 20

_HEADER = struct.Struct("!Q")
_PR_SET_PDEATHSIG = 1
# How `run` starts the server: this file's own checkout first on sys.path, and a cwd (the private temp dir) where no
# stray file can shadow a preloaded module.
_BOOT = "import sys; sys.path[0] = sys.argv.pop(1); from embedlab.warm import main; sys.exit(main(sys.argv[1:]))"


def _note(message: str) -> None:
    print(f"embedlab.warm: {message}", file=sys.stderr, flush=True)


def _verbose() -> bool:
    return bool(os.environ.get(ENV_VERBOSE))


def sensitive_env(env: dict[str, str]) -> dict[str, str]:
    """The part of ``env`` that libraries read at import time (see the module docstring)."""
    return {k: v for k, v in env.items() if k in SENSITIVE_NAMES or k.startswith(SENSITIVE_PREFIXES)}


def _interpreter_options() -> list[Any]:
    """Interpreter flags and options that change how imported code behaves (-O, -B, -X, -W, ...)."""
    return [list(sys.flags), list(sys.warnoptions), {k: str(v) for k, v in sys._xoptions.items()}]


# --------------------------------------------------------------------------------------------------------- client


def delegate(entry: Callable[..., object] | None = None) -> int | None:
    """Run this process's script in a child of the warm server and return its exit status.

    ``None`` means "run it yourself": ``$EMBEDLAB_WARM`` is unset, the process was not started as
    ``python SCRIPT`` (``-m``, ``-c``, an interactive session; or ``entry`` is not defined in ``__main__``, as when a
    test calls ``run_stage`` directly), the server cannot be reached, or it refused the request. Refusals and failures
    are silent unless ``$EMBEDLAB_WARM_VERBOSE`` is set; after one, ``EMBEDLAB_WARM`` is removed from the environment
    so that the stage's own subprocesses do not ask again.

    While the child runs, SIGINT, SIGTERM and SIGHUP received here are forwarded to it; if this process is killed
    outright, the server sees the connection close and kills the child's process group. A child killed by signal N
    gives status 128+N, as in a shell.
    """
    path = os.environ.get(ENV_SOCKET)
    if not path:
        return None
    main_module = sys.modules.get("__main__")
    script = getattr(main_module, "__file__", None)
    if entry is not None and getattr(entry, "__module__", None) != "__main__":
        return None  # a library call (tests, notebooks), not a stage script's entry point
    if getattr(main_module, "__spec__", None) is not None or not script or not os.path.isfile(script):
        return _fall_back("not started as `python SCRIPT`")
    try:
        fds = [0, 1, 2]
        for fd in fds:
            os.fstat(fd)
        request = _request(os.path.abspath(script))
    except (OSError, TypeError, ValueError) as err:
        return _fall_back(f"cannot describe this process: {err}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(CONNECT_TIMEOUT_S)
        sock.connect(path)
    except OSError as err:
        sock.close()
        return _fall_back(f"cannot connect to {path}: {err}")
    with sock:
        return _Client(sock).run(request, fds)


def _fall_back(reason: str) -> None:
    if _verbose():
        _note(f"running in-process ({reason})")
    os.environ.pop(ENV_SOCKET, None)
    return None


def _request(script: str) -> bytes:
    umask = os.umask(0o022)
    os.umask(umask)
    ignored = [int(s) for s in signal.valid_signals() if _is_ignored(s)]
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    payload = {
        "script": script,
        "argv": list(sys.argv),
        "orig_argv": list(getattr(sys, "orig_argv", sys.argv)),
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "executable": sys.executable,
        "options": _interpreter_options(),
        "umask": umask,
        "unbuffered": bool(getattr(sys.__stdout__, "write_through", False)),  # python -u / PYTHONUNBUFFERED
        "ignored_signals": ignored,
        "affinity": affinity,
        "nice": os.nice(0) if hasattr(os, "nice") else 0,
    }
    body = json.dumps(payload).encode()
    return _HEADER.pack(len(body)) + body


def _is_ignored(signum: int) -> bool:
    try:
        return signal.getsignal(signum) is signal.SIG_IGN
    except (OSError, ValueError):
        return False


class _Client:
    """One request: send it, forward signals to the child, wait for the exit status."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.pid: int | None = None
        self.pending: list[int] = []
        self.saved: dict[int, Any] = {}

    def run(self, request: bytes, fds: list[int]) -> int | None:
        try:
            self._install_forwarding()
        except ValueError as err:  # signal.signal outside the main thread
            self._restore(redeliver=False)
            return _fall_back(f"cannot forward signals: {err}")
        try:
            try:
                sent = socket.send_fds(self.sock, [request], fds)
                if sent < len(request):  # never an empty send: it fails once a refusing server has closed
                    self.sock.sendall(request[sent:])
                self.sock.settimeout(HANDSHAKE_TIMEOUT_S)
                first = self._read_message()
            except (OSError, ValueError) as err:
                first, reason = None, f"no answer: {err}"
            else:
                reason = "the server closed the connection"
            if first is None or "pid" not in first:
                self._restore(redeliver=True)
                return _fall_back(first["refused"] if first and "refused" in first else reason)
            self.pid = int(first["pid"])
            if _verbose():
                _note(f"running in warm child {self.pid}")
            for signum in self.pending:
                _kill(self.pid, signum)
            self.pending.clear()
            self.sock.settimeout(None)
            try:
                last = self._read_message()
            except (OSError, ValueError):
                last = None
            if last is None or "status" not in last:
                _note("the warm server went away before the stage finished")
                return 1
            self.pid = None  # reaped: its pid may be reused, so no more forwarding
            code = int(last["status"])
            return code if code >= 0 else 128 - code
        finally:
            self._restore(redeliver=False)

    def _install_forwarding(self) -> None:
        for signum in FORWARDED_SIGNALS:
            if not _is_ignored(signum):  # an ignored signal (nohup, `cmd &`) stays ignored in the child
                self.saved[signum] = signal.signal(signum, self._forward)

    def _forward(self, signum: int, _frame: object) -> None:
        if self.pid is None:
            self.pending.append(signum)
        else:
            _kill(self.pid, signum)

    def _restore(self, redeliver: bool) -> None:
        for signum, handler in self.saved.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        self.saved.clear()
        pending, self.pending = self.pending, []
        if redeliver:  # signals that came before a refusal belong to this process after all
            for signum in pending:
                signal.raise_signal(signum)

    def _read_message(self) -> dict[str, Any] | None:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                return None
            self.buffer += chunk
        line, _, rest = bytes(self.buffer).partition(b"\n")
        self.buffer = bytearray(rest)
        return json.loads(line)


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


# --------------------------------------------------------------------------------------------------------- server


class _Conn:
    """One caller's connection: its request as it arrives, then the pid of its child."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.fds: list[int] = []
        self.pid: int | None = None
        self.script = ""


def serve(path: str, preload: Sequence[str], parent: int | None = None) -> int:
    """Import ``preload``, then fork a child for every request on the unix socket ``path`` until SIGTERM/SIGINT.

    With ``parent`` (set by ``run``) the server also stops when that process is gone.
    """
    import time

    _ensure_std_fds()
    start_env = dict(os.environ)  # what requests are compared with: before any import can change it
    started = time.perf_counter()
    loaded = _preload(preload)
    elapsed = time.perf_counter() - started
    added = {k: v for k, v in os.environ.items() if k not in start_env}
    hazard = _fork_hazard()
    if hazard:
        _note(f"every request will run in its caller's process: {hazard}")
    server = _Server(path, start_env, added, hazard)
    try:
        _note(f"ready on {path}: {len(loaded)}/{len(preload)} modules preloaded in {elapsed:.1f}s (pid {os.getpid()})")
        server.loop(parent)
    finally:
        server.close()
    return 0


def _ensure_std_fds() -> None:
    """Keep fds 0-2 taken, so that fds received from clients never land there before ``dup2``."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def _preload(modules: Sequence[str]) -> list[str]:
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
    import gc

    gc.collect()
    gc.freeze()  # the preloaded objects stay shared with the children: a collection would touch (copy) their pages
    return loaded


def _fork_hazard() -> str | None:
    """Why children forked from this server would be unsafe, if they would (then every request is refused)."""
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    if cuda is not None and cuda.is_initialized():
        return "CUDA was initialised in the server while preloading; a forked child could not use it"
    try:
        with open("/proc/self/maps") as maps:
            if "libcuda.so" in maps.read():
                return "the CUDA driver was loaded in the server while preloading; a forked child could not use it"
    except OSError:
        pass
    import threading

    if threading.active_count() > 1:  # a Python thread may hold a lock (logging's, an import lock) at fork time
        names = ", ".join(t.name for t in threading.enumerate() if t is not threading.current_thread())
        _note(f"warning: Python threads running after preloading ({names}); a child gets only the forking one")
    if os.environ.get(ENV_VERBOSE):
        # Native pools started at load time (OpenBLAS for numpy and scipy, Arrow's jemalloc) are expected: they
        # handle fork themselves (pthread_atfork), as they must for multiprocessing's default start method.
        with contextlib.suppress(OSError):
            tasks = os.listdir("/proc/self/task")
            comms = []
            for task in tasks:
                with open(f"/proc/self/task/{task}/comm") as comm:
                    comms.append(comm.read().strip())
            if len(tasks) > 1:
                _note(f"{len(tasks)} native threads after preloading: {', '.join(comms)}")
    return None


class _Server:
    """The zygote: a ``selectors`` loop over the listening socket and the open requests, no threads."""

    def __init__(self, path: str, start_env: dict[str, str], added_env: dict[str, str], hazard: str | None) -> None:
        import selectors

        self.path = path
        self.start_env = sensitive_env(start_env)
        self.added_env = added_env
        self.hazard = hazard
        self.options = json.loads(json.dumps(_interpreter_options()))
        self.verbose = bool(start_env.get(ENV_VERBOSE))
        self.pid = os.getpid()
        self.libc = _libc()
        self.selector = selectors.DefaultSelector()
        self.conns: dict[int, _Conn] = {}
        self.children: dict[int, _Conn | None] = {}
        self.stopping = False
        self.listener = self._bind(path)
        self.inode = os.stat(path).st_ino
        self.selector.register(self.listener, selectors.EVENT_READ, None)
        for signum in FORWARDED_SIGNALS:
            signal.signal(signum, self._stop)

    @staticmethod
    def _bind(path: str) -> socket.socket:
        """Listen on ``path``; bound under a temporary name and renamed, so the path exists only once it accepts."""
        if os.path.lexists(path):
            import stat

            if not stat.S_ISSOCK(os.lstat(path).st_mode):
                raise SystemExit(f"embedlab.warm: {path} exists and is not a socket")
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(path)
            except OSError:
                os.unlink(path)  # stale socket of a server that died
            else:
                raise SystemExit(f"embedlab.warm: a server is already listening on {path}")
            finally:
                probe.close()
        tmp = f"{path}.{os.getpid()}.tmp"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(tmp)
        os.chmod(tmp, 0o600)
        listener.listen(64)
        listener.setblocking(False)
        os.rename(tmp, path)
        return listener

    def _stop(self, _signum: int, _frame: object) -> None:
        self.stopping = True

    def loop(self, parent: int | None = None) -> None:
        while not self.stopping:
            if parent is not None and os.getppid() != parent:  # `run` was killed outright: do not outlive it
                break
            for key, _ in self.selector.select(timeout=REAP_INTERVAL_S):
                if key.data is None:
                    self._accept()
                else:
                    self._readable(key.data)
            self._reap()

    def _accept(self) -> None:
        import selectors

        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        if hasattr(socket, "SO_PEERCRED"):
            _, uid, _ = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
            if uid != os.getuid():
                sock.close()
                return
        sock.setblocking(False)
        conn = _Conn(sock)
        self.conns[sock.fileno()] = conn
        self.selector.register(sock, selectors.EVENT_READ, conn)

    def _readable(self, conn: _Conn) -> None:
        if conn.pid is not None:
            # A client sends nothing after its request: readable means it closed (exited, or was killed).
            try:
                data = conn.sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self._client_gone(conn)
            return
        try:
            data, fds, flags, _ = socket.recv_fds(conn.sock, 1 << 16, 3)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(conn)
            return
        conn.fds.extend(fds)
        if not data or flags & getattr(socket, "MSG_CTRUNC", 0):
            self._drop(conn)
            return
        conn.buffer += data
        if len(conn.buffer) < _HEADER.size:
            return
        (size,) = _HEADER.unpack_from(conn.buffer)
        if size > MAX_REQUEST_BYTES:
            self._drop(conn)
        elif len(conn.buffer) >= _HEADER.size + size:
            self._handle(conn, bytes(conn.buffer[_HEADER.size : _HEADER.size + size]))

    def _handle(self, conn: _Conn, body: bytes) -> None:
        try:
            request = json.loads(body)
            reason = self._refusal(request, conn.fds)
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            request, reason = {}, f"malformed request: {err}"
        if reason is not None:
            if self.verbose:
                _note(f"refused {request.get('script', '?')}: {reason}")
            self._send(conn, {"refused": reason})
            self._drop(conn)
            return
        self._fork(conn, request)

    def _refusal(self, request: dict[str, Any], fds: list[int]) -> str | None:
        """Why this request must run in its caller's process, or None (the module docstring says why)."""
        if self.hazard:
            return self.hazard
        if len(fds) != 3:
            return "stdin/stdout/stderr were not passed"
        if not _same_file(request["executable"]):
            return f"interpreter {request['executable']} is not the server's {sys.executable}"
        if request["options"] != self.options:
            return "interpreter options (-O, -X, -W, ...) differ from the server's"
        theirs = sensitive_env(request["env"])
        if theirs != self.start_env:
            names = sorted(k for k in theirs.keys() | self.start_env.keys() if theirs.get(k) != self.start_env.get(k))
            return f"import-time environment differs from the server's: {', '.join(names)}"
        if not os.path.isabs(request["script"]) or not os.path.isdir(request["cwd"]):
            return "script path not absolute or cwd missing"
        return None

    def _fork(self, conn: _Conn, request: dict[str, Any]) -> None:
        # Forwarded signals stay blocked across fork() until the child has restored the default handlers: one
        # arriving in between would otherwise run this server's handler in the child and be lost.
        signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()  # or the child would write this process's buffered output a second time
        # Python >= 3.12 warns on fork() when the process has threads; the native pools of OpenBLAS and jemalloc
        # count, and handle fork themselves. The `finally` below restores the filters in the child too.
        import warnings

        guard = warnings.catch_warnings()
        guard.__enter__()
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            pid = os.fork()
        except OSError as err:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
            self._send(conn, {"refused": f"fork failed: {err}"})
            self._drop(conn)
            return
        finally:
            guard.__exit__(None, None, None)
        if pid == 0:
            try:
                _child(request, list(conn.fds), self)
            finally:
                os._exit(1)  # _child never returns; this only guards the server's loop against a child
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # also done by the child; whichever runs first wins the race with killpg
        _close_fds(conn.fds)
        conn.pid, conn.script = pid, request["script"]
        self.children[pid] = conn
        if self.verbose:
            _note(f"forked {pid} for {request['script']} {' '.join(request['argv'][1:])}")
        if not self._send(conn, {"pid": pid, "script": request["script"]}):
            self._client_gone(conn)

    def _send(self, conn: _Conn, message: dict[str, Any]) -> bool:
        try:
            conn.sock.sendall(json.dumps(message).encode() + b"\n")
        except OSError:
            return False
        return True

    def _drop(self, conn: _Conn) -> None:
        if self.conns.pop(conn.sock.fileno(), None) is not None:
            self.selector.unregister(conn.sock)
        conn.sock.close()
        _close_fds(conn.fds)

    def _client_gone(self, conn: _Conn) -> None:
        """The caller exited or was killed without waiting: its child's whole process group goes too."""
        pid = conn.pid
        if pid is not None and pid in self.children:
            if self.verbose:
                _note(f"client of {pid} went away: killing its process group")
            _killpg(pid, signal.SIGKILL)
            self.children[pid] = None
        self._drop(conn)

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            code = os.waitstatus_to_exitcode(status)
            if self.verbose:
                _note(f"child {pid} exited with {code}")
            if conn is not None:
                self._send(conn, {"status": code})
                self._drop(conn)

    def close_inherited(self, keep: list[int]) -> None:
        """In a child: close the server's sockets and fds (the listener, every other caller's connection)."""
        self.selector.close()
        self.listener.close()
        for conn in self.conns.values():
            conn.sock.close()
            _close_fds([fd for fd in conn.fds if fd not in keep])

    def close(self) -> None:
        """Stop: kill the children still running, drop their callers, remove the socket."""
        for pid in list(self.children):
            _killpg(pid, signal.SIGKILL)
        for conn in list(self.conns.values()):
            self._drop(conn)
        for pid in list(self.children):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.children.clear()
        self.selector.close()
        self.listener.close()
        try:
            if os.stat(self.path).st_ino == self.inode:
                os.unlink(self.path)
        except OSError:
            pass


def _killpg(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        _kill(pgid, signum)


def _close_fds(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    fds.clear()


def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------------------- child


def _child(request: dict[str, Any], fds: list[int], server: _Server) -> NoReturn:
    """Become the caller's stage process, run its script, exit with the status CPython would have given."""
    try:
        os.setpgid(0, 0)  # one group per stage, so the server can kill the stage with all its subprocesses
        if server.libc is not None:
            server.libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # die with the server...
        if os.getppid() != server.pid:
            os._exit(1)  # ... including when it died before prctl ran
        server.close_inherited(keep=fds)
        _reset_signals(set(request["ignored_signals"]))
        _take_stdio(fds, bool(request.get("unbuffered")))
        _become(request, server.added_env)
    except BaseException:
        import traceback

        traceback.print_exc()
        _flush_std()
        os._exit(1)
    status, sigint = _run_script(request["script"])
    _exit(status, sigint)


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
        try:
            if signal.getsignal(signum) is not wanted:
                signal.signal(signum, wanted)
        except (OSError, ValueError):
            pass
    with contextlib.suppress(ValueError):
        signal.set_wakeup_fd(-1)


def _take_stdio(fds: list[int], unbuffered: bool) -> None:
    """The caller's fds become 0, 1, 2, with new ``sys.std*`` objects (buffered as at start-up, for the new fds)."""
    old = [sys.stdin, sys.stdout, sys.stderr, sys.__stdin__, sys.__stdout__, sys.__stderr__]
    encoding = getattr(sys.__stdout__, "encoding", None) or "utf-8"
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    _close_fds(fds)
    stdin = _stdio(0, "r", "<stdin>", getattr(sys.__stdin__, "encoding", None) or encoding, "strict", False)
    stdout = _stdio(1, "w", "<stdout>", encoding, getattr(sys.__stdout__, "errors", None) or "strict", unbuffered)
    stderr = _stdio(
        2, "w", "<stderr>", getattr(sys.__stderr__, "encoding", None) or encoding, "backslashreplace", unbuffered
    )
    sys.stdin = sys.__stdin__ = stdin
    sys.stdout = sys.__stdout__ = stdout
    sys.stderr = sys.__stderr__ = stderr
    # Loggers configured at import time (transformers' does) hold the server's stream objects: point them here.
    logging = sys.modules.get("logging")
    if logging is not None:
        replace = {id(o): n for o, n in zip(old, [stdin, stdout, stderr] * 2, strict=True) if o is not None}
        loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
        for logger in loggers:
            for handler in getattr(logger, "handlers", []):
                stream = getattr(handler, "stream", None)
                if isinstance(handler, logging.StreamHandler) and id(stream) in replace:
                    handler.stream = replace[id(stream)]


def _stdio(fd: int, mode: str, name: str, encoding: str, errors: str, unbuffered: bool) -> Any:
    import io

    raw = io.FileIO(fd, mode, closefd=False)
    raw.name = name  # type: ignore[misc]
    if unbuffered:
        buffer: Any = raw
    elif mode == "r":
        buffer = io.BufferedReader(raw)
    else:
        buffer = io.BufferedWriter(raw)
    line_buffering = mode == "w" and not unbuffered and (fd == 2 or raw.isatty())
    text = io.TextIOWrapper(
        buffer, encoding=encoding, errors=errors, newline="\n", line_buffering=line_buffering, write_through=unbuffered
    )
    text.mode = mode  # type: ignore[misc]
    return text


def _become(request: dict[str, Any], added_env: dict[str, str]) -> None:
    """Take the caller's cwd, environment, argv, umask, CPU affinity and niceness; forget this checkout's embedlab."""
    import importlib

    os.chdir(request["cwd"])
    os.umask(int(request["umask"]))
    if request.get("affinity") and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, request["affinity"])
    if hasattr(os, "nice"):
        try:
            if int(request["nice"]) > os.nice(0):
                os.nice(int(request["nice"]) - os.nice(0))
        except OSError:
            pass
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
    if not getattr(sys.flags, "safe_path", False):  # Python 3.11+ (-P)
        script = request["script"]
        sys.path[0] = os.path.dirname(os.path.realpath(script))  # what `python SCRIPT` puts first
    importlib.invalidate_caches()
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        numpy_random.seed()  # every child would otherwise draw the same numbers (`random` reseeds itself at fork)


def _run_script(script: str) -> tuple[int, bool]:
    """Run ``script`` as ``__main__``; its exit status as CPython's, and whether KeyboardInterrupt ended it."""
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
        _exec_main(script)
    except SystemExit as exc:
        return _exit_status(exc.code), False
    except KeyboardInterrupt as exc:
        _print_exception(exc, script)
        return 1, True
    except BaseException as exc:
        _print_exception(exc, script)
        return 1, False
    return 0, False


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


def _exit_status(code: object) -> int:
    """``SystemExit.code`` to a status: None is 0, an int itself, anything else printed to stderr and 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    with contextlib.suppress(Exception):
        print(code, file=sys.stderr)
    return 1


def _print_exception(exc: BaseException, script: str) -> None:
    """The traceback ``python SCRIPT`` prints: from the script's first frame on, without this module's."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != script:
        tb = tb.tb_next
    with contextlib.suppress(Exception):
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)


def _exit(status: int, sigint: bool) -> NoReturn:
    """Finish like the interpreter: join non-daemon threads, run atexit callbacks, flush stdio; then ``_exit``."""
    import atexit
    import threading

    try:
        threading._shutdown()  # type: ignore[attr-defined]
    except KeyboardInterrupt:
        sigint = True
    except Exception:
        pass
    try:
        atexit._run_exitfuncs()
    except KeyboardInterrupt:
        sigint = True
    if not _flush_std() and status == 0:
        status = 120  # CPython's status when stdout cannot be flushed at exit
    if sigint:  # CPython ends an uncaught KeyboardInterrupt by dying of SIGINT, so its parent sees the signal
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(status)


def _flush_std() -> bool:
    ok = True
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            ok = False
    return ok


# ------------------------------------------------------------------------------------------------------------ run


def run(cmd: Sequence[str], preload: Sequence[str]) -> int:
    """Start a private server, run ``cmd`` with ``$EMBEDLAB_WARM`` set, stop the server; ``cmd``'s exit status.

    The server lives in a 0700 temp dir, in its own process group (a Ctrl-C at the terminal reaches ``cmd``, which
    decides how to stop, not the server under it). If the server fails to start, ``cmd`` runs without it.
    """
    import shutil
    import subprocess
    import tempfile

    tmp = tempfile.mkdtemp(prefix="embedlab-warm-")
    path = os.path.join(tmp, "sock")
    server: subprocess.Popen[bytes] | None = None
    try:
        env = {k: v for k, v in os.environ.items() if k != ENV_SOCKET}
        src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        argv = [sys.executable, "-c", _BOOT, src, "serve", "--socket", path, "--preload", ",".join(preload)]
        argv += ["--parent", str(os.getpid())]
        group = {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}
        server = subprocess.Popen(argv, stdin=subprocess.DEVNULL, cwd=tmp, env=env, **group)  # type: ignore[call-overload]
        if _wait_ready(server, path):
            env[ENV_SOCKET] = path
        else:
            _note(f"the server did not start (exit {server.returncode}); running without it")
        return _run_command(cmd, env)
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    finally:
        if server is not None:
            _stop_server(server)
        shutil.rmtree(tmp, ignore_errors=True)


def _same_file(executable: str) -> bool:
    """Whether ``executable`` is this interpreter (``python`` and ``python3`` in one venv are the same file)."""
    try:
        return os.path.samefile(executable, sys.executable)
    except OSError:
        return executable == sys.executable


def _wait_ready(server: Any, path: str) -> bool:
    import time

    deadline = time.monotonic() + READY_TIMEOUT_S
    while server.poll() is None and time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.02)
    return False


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


def _stop_server(server: Any) -> None:
    import subprocess

    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# ------------------------------------------------------------------------------------------------------------ CLI


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m embedlab.warm {run,serve}``: see the module docstring."""
    import argparse

    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m embedlab.warm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    preload_help = f"comma-separated modules to import once (default: {','.join(DEFAULT_PRELOAD)})"
    run_p = sub.add_parser("run", help="run CMD with a private warm server", usage="%(prog)s [--preload M,...] -- CMD")
    run_p.add_argument("--preload", default=",".join(DEFAULT_PRELOAD), help=preload_help)
    serve_p = sub.add_parser("serve", help="serve until SIGTERM/SIGINT; export EMBEDLAB_WARM=PATH to use it")
    serve_p.add_argument("--socket", required=True, help="unix socket path to listen on")
    serve_p.add_argument("--preload", default=",".join(DEFAULT_PRELOAD), help=preload_help)
    serve_p.add_argument("--parent", type=int, default=None, help=argparse.SUPPRESS)  # set by `run`
    cmd: list[str] = []
    if args[:1] == ["run"] and not {"-h", "--help"} & set(args[: args.index("--") if "--" in args else None]):
        if "--" not in args:
            run_p.error("give the command after --, e.g. python -m embedlab.warm run -- dvc repro")
        split = args.index("--")
        args, cmd = args[:split], args[split + 1 :]
        if not cmd:
            run_p.error("no command after --")
    opts = parser.parse_args(args)
    preload = [m.strip() for m in opts.preload.split(",") if m.strip()]
    if opts.command == "run":
        return run(cmd, preload)
    return serve(opts.socket, preload, opts.parent)


if __name__ == "__main__":
    sys.exit(main())
