"""The warm-start fork server (embedlab.warm): a stage run through it behaves as when run directly, only faster.

Servers are started as `make repro` starts one, by ``python -m embedlab.warm run -- CMD``; most tests preload only
``colorsys`` (a stdlib module nothing else imports, so a script can tell whether it runs in a child of the server) to
keep them fast; one preloads torch to show a real preload works. Every wait is for an event (a line on a pipe, a
file, a process ending) with a generous timeout, never a fixed sleep, so that the tests hold on a loaded machine.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
# `python -m embedlab.warm` without needing the package installed: this checkout's src/ first on sys.path
WARM = [
    sys.executable,
    "-c",
    f"import sys; sys.path.insert(0, {str(SRC)!r}); from embedlab.warm import main; sys.exit(main())",
]
TIMEOUT = 120.0  # for anything that takes well under a second on a quiet machine

SCRIPT = """\
import os, sys, time
sys.path.insert(0, {src!r})
from embedlab.errors import EmbedlabError, run_stage

PRELOADED = "colorsys" in sys.modules  # only the warm server imports it


def main() -> None:
    mode = sys.argv[1]
    print("argv", sys.argv, "cwd", os.getcwd(), "var", os.environ.get("WARM_TEST_VAR"), "umask", oct(os.umask(0o022)))
    print("stdin", sys.stdin.read())
    print("to stderr", file=sys.stderr)
    print("probe", os.getpid(), os.getppid(), PRELOADED, flush=True)  # the one line that differs
    if mode == "exit3":
        sys.exit(3)
    if mode == "user":
        raise EmbedlabError("bad thing", "do this")
    if mode == "crash":
        raise ValueError("boom")
    if mode == "message":
        sys.exit("bye")
    if mode == "sleep":
        with open(sys.argv[2] + ".tmp", "w") as file:
            file.write(str(os.getpid()))
        os.replace(sys.argv[2] + ".tmp", sys.argv[2])  # the test sees the whole pid or nothing
        time.sleep(600)
    if mode == "where":
        import embedlab.errors

        print("embedlab", embedlab.__file__, embedlab.errors.__file__, getattr(embedlab, "MARK", None))
    if mode == "import":  # whether this interpreter's environment has the module, else the error `import` gives
        import importlib.util

        found = importlib.util.find_spec(sys.argv[2]) is not None
        print("found", found, flush=True)
        if not found:
            __import__(sys.argv[2])
    if mode == "threads":  # the end of a Python process: executors shut, non-daemon threads joined, atexit run
        import atexit
        import threading
        from concurrent.futures import ThreadPoolExecutor

        atexit.register(print, "atexit callback")
        task = ThreadPoolExecutor(1).submit(print, "executor task")

        def after_main() -> None:  # runs on after the main thread has finished: only a real interpreter exit waits
            threading.main_thread().join()
            task.result()
            print("thread done")

        threading.Thread(target=after_main).start()


if __name__ == "__main__":
    run_stage(main)
    if sys.argv[1] == "escape":  # past run_stage: Python's own end, a traceback and death by SIGINT
        raise KeyboardInterrupt
"""


def write_script(directory: Path, src: Path = SRC) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "stage.py"
    script.write_text(SCRIPT.format(src=str(src)))
    return script


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBEDLAB_WARM")}
    env["WARM_TEST_VAR"] = "hello"
    env.update(extra)
    return env


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, input="some input", capture_output=True, text=True, umask=0o027, timeout=TIMEOUT
    )


def split_probe(stdout: str) -> tuple[str, list[str]]:
    """stdout without the probe line, and the probe's fields: pid, parent pid, whether colorsys was preloaded."""
    lines = stdout.splitlines(keepends=True)
    probe = [line for line in lines if line.startswith("probe ")]
    assert len(probe) == 1, stdout
    return "".join(line for line in lines if not line.startswith("probe ")), probe[0].split()[1:]


def notes(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("embedlab.warm:")]


def without_notes(stderr: str) -> str:
    return "".join(line for line in stderr.splitlines(keepends=True) if not line.startswith("embedlab.warm:"))


def wait_for(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
    """Poll ``predicate`` until it holds (for what has no event to wait on: a file appearing, a process gone)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def read_line(pipe: IO[str], timeout: float = TIMEOUT) -> str:
    """The next line the process writes (one flushed print), or "" at end of file or timeout."""
    ready, _, _ = select.select([pipe], [], [], timeout)
    return pipe.readline() if ready else ""


def gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie nobody reaped yet counts: it runs no more code)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in "ZX"
    except (FileNotFoundError, ProcessLookupError):
        return True


class Server:
    """A private server as `make repro` has one: ``warm run -- HOLDER``, where HOLDER prints ``$EMBEDLAB_WARM``
    (set only once the server is ready) and waits for its stdin to close; ``pid`` is the server's, from its ready
    line."""

    HOLDER = "import os, sys; print(os.environ['EMBEDLAB_WARM'], flush=True); sys.stdin.read()"

    def __init__(self, directory: Path, preload: str = "colorsys", **env: str) -> None:
        self.log = directory / "run.log"
        self.env_extra = env
        with open(self.log, "w") as log:
            cmd = [*WARM, "run", "--preload", preload, "--", sys.executable, "-c", self.HOLDER]
            self.proc = subprocess.Popen(
                cmd, env=base_env(**env), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True
            )
        line = read_line(self.proc.stdout)
        assert line, self.log.read_text()
        self.socket = Path(line.strip())
        ready = re.search(r"modules preloaded in .*\(pid (\d+)\)", self.log.read_text())
        assert ready, self.log.read_text()
        self.pid = int(ready[1])

    def env(self, **extra: str) -> dict[str, str]:
        return base_env(EMBEDLAB_WARM=str(self.socket), **{**self.env_extra, **extra})

    def stop(self) -> None:
        self.proc.stdin.close()
        assert self.proc.wait(TIMEOUT) == 0, self.log.read_text()
        self.proc.stdout.close()
        assert gone(self.pid)
        assert not self.socket.parent.exists()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("warm"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_script(tmp_path_factory.mktemp("stages"))


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "work").mkdir()
    return tmp_path / "work"


@pytest.fixture(autouse=True)
def terminal_sigint() -> Iterator[None]:
    """SIGINT as a terminal gives it: a shell's background job (`make test &`, nohup) starts with SIGINT ignored,
    every child inherits that, and a Ctrl-C test would then wait forever for a child that cannot be interrupted."""
    old = signal.getsignal(signal.SIGINT)
    if old == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # exec'd children get SIG_DFL
    yield
    signal.signal(signal.SIGINT, old)


@pytest.mark.parametrize(
    ("mode", "status", "stderr_tail"),
    [
        ("ok", 0, "to stderr\n"),
        ("exit3", 3, "to stderr\n"),
        ("user", 2, "error: bad thing\n  fix: do this\n"),
        ("crash", 1, "ValueError: boom\n"),
        ("message", 1, "bye\n"),
        ("threads", 0, "to stderr\n"),
    ],
)
def test_stage_in_warm_child_behaves_as_run_directly(
    server: Server, script: Path, work: Path, mode: str, status: int, stderr_tail: str
) -> None:
    direct = run([sys.executable, str(script), mode, "b"], work, base_env())
    warm = run([sys.executable, str(script), mode, "b"], work, server.env())

    assert direct.returncode == warm.returncode == status
    assert direct.stderr == warm.stderr  # tracebacks included: same frames, none of the server's
    assert warm.stderr.endswith(stderr_tail)
    direct_out, (_, direct_parent, direct_preloaded) = split_probe(direct.stdout)
    warm_out, (_, warm_parent, warm_preloaded) = split_probe(warm.stdout)
    assert direct_out == warm_out
    assert f"argv ['{script}', '{mode}', 'b'] cwd {work} var hello umask 0o27\nstdin some input\n" in warm_out
    assert (direct_parent, direct_preloaded) == (str(os.getpid()), "False")
    assert (warm_parent, warm_preloaded) == (str(server.pid), "True")  # a forked child of the server
    if mode == "threads":
        assert warm_out.endswith("executor task\nthread done\natexit callback\n")


def test_uncaught_keyboard_interrupt_ends_the_child_as_python_does(server: Server, script: Path, work: Path) -> None:
    direct = run([sys.executable, str(script), "escape"], work, base_env())
    warm = run([sys.executable, str(script), "escape"], work, server.env())

    assert direct.returncode == -signal.SIGINT  # CPython died of SIGINT, so that its parent knows
    assert warm.returncode == 128 + signal.SIGINT  # the client reports the child's death as a shell does
    assert direct.stderr == warm.stderr  # the traceback from the script's frame, none of the server's
    assert warm.stderr.endswith("KeyboardInterrupt\n")
    assert split_probe(warm.stdout)[1][1:] == [str(server.pid), "True"]


def test_warm_run_cli_runs_the_command_with_a_server(script: Path, work: Path) -> None:
    cmd = [sys.executable, str(script), "exit3", "a", "b"]
    direct = run(cmd, work, base_env())
    warm = run([*WARM, "run", "--preload", "colorsys", "--", *cmd], work, base_env())

    assert direct.returncode == warm.returncode == 3
    assert split_probe(direct.stdout)[0] == split_probe(warm.stdout)[0]
    assert split_probe(warm.stdout)[1][2] == "True"
    assert without_notes(warm.stderr) == direct.stderr
    assert "modules preloaded in" in warm.stderr  # the server's ready line, with its preload time


def test_child_imports_embedlab_from_the_scripts_checkout(server: Server, tmp_path: Path, work: Path) -> None:
    other_src = tmp_path / "other_checkout" / "src"
    shutil.copytree(SRC / "embedlab", other_src / "embedlab", ignore=shutil.ignore_patterns("__pycache__"))
    with open(other_src / "embedlab" / "__init__.py", "a") as init:
        init.write('\nMARK = "other checkout"\n')
    script = write_script(tmp_path / "other_checkout" / "stages", src=other_src)

    proc = run([sys.executable, str(script), "where"], work, server.env())

    assert proc.returncode == 0, proc.stderr
    out, (_, parent, preloaded) = split_probe(proc.stdout)
    assert (parent, preloaded) == (str(server.pid), "True")
    expected = f"embedlab {other_src}/embedlab/__init__.py {other_src}/embedlab/errors.py other checkout\n"
    assert out.endswith(expected)


def test_base_interpreter_is_not_served_by_the_venvs_server(server: Server, script: Path, work: Path) -> None:
    """#17: with a shell whose `python` is the base interpreter, plain `dvc repro` fails at once (No module named
    'datasets'); under the warm start it must fail the same way, not run in the venv's server."""
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    if sys.prefix == sys.base_prefix or not base.is_file():
        pytest.skip("the tests do not run in a venv")
    same_binary = os.path.samefile(base, sys.executable)  # the quoted case: only the environment differs
    cmd = [str(base), str(script), "import", "datasets"]

    direct = run(cmd, work, base_env())
    warm = run(cmd, work, server.env(EMBEDLAB_WARM_VERBOSE="1"))
    venv = run([sys.executable, *cmd[1:]], work, server.env())

    assert direct.returncode == warm.returncode == 1
    assert direct.stderr.endswith("ModuleNotFoundError: No module named 'datasets'\n")
    assert without_notes(warm.stderr) == direct.stderr
    assert split_probe(warm.stdout) == (split_probe(direct.stdout)[0], split_probe(warm.stdout)[1])
    assert split_probe(warm.stdout)[1][1:] == [str(os.getpid()), "False"]  # ran in its own process
    (note,) = notes(warm.stderr)
    assert "running in-process" in note and ("sys.prefix" in note or not same_binary)
    assert venv.returncode == 0, venv.stderr  # while the venv's python is served, and finds the module
    assert "found True" in venv.stdout and split_probe(venv.stdout)[1][1:] == [str(server.pid), "True"]


def start_sleeper(script: Path, work: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    pid_file = work / "child.pid"
    client = subprocess.Popen(
        [sys.executable, str(script), "sleep", str(pid_file)],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert wait_for(pid_file.exists)
    child = int(pid_file.read_text())
    assert child != client.pid  # the work runs in the server's child, the client only waits
    return client, child


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 128 + 15), (signal.SIGINT, 128 + 2)])
def test_signal_to_client_is_forwarded_to_child(
    server: Server, script: Path, work: Path, signum: int, status: int
) -> None:
    client, child = start_sleeper(script, work, server.env())
    client.send_signal(signum)
    assert client.wait(TIMEOUT) == status  # the child died of the signal: 128+N, as in a shell
    assert wait_for(lambda: gone(child))
    stderr = client.stderr.read()
    if signum == signal.SIGINT:  # Python's default SIGINT handler ran in the child (run_stage may report it)
        assert "KeyboardInterrupt" in stderr or "interrupted" in stderr
    client.stdout.close()
    client.stderr.close()


def test_sigkill_to_client_kills_child(server: Server, script: Path, work: Path) -> None:
    client, child = start_sleeper(script, work, server.env())
    client.kill()
    client.wait(TIMEOUT)
    assert wait_for(lambda: gone(child))  # the server saw the connection close and killed the process group
    client.stdout.close()
    client.stderr.close()


def test_child_dies_with_the_server(tmp_path: Path, script: Path, work: Path) -> None:
    server = Server(tmp_path)
    client, child = start_sleeper(script, work, server.env())
    os.kill(server.pid, signal.SIGKILL)  # no clean-up at all: the child goes by PR_SET_PDEATHSIG
    assert wait_for(lambda: gone(child))
    assert client.wait(TIMEOUT) == 1
    assert "the warm server went away" in client.stderr.read()
    client.stdout.close()
    client.stderr.close()
    server.stop()  # run removes the directory the server could not


def test_missing_server_falls_back_to_in_process(script: Path, work: Path, tmp_path: Path) -> None:
    direct = run([sys.executable, str(script), "user"], work, base_env())
    missing = str(tmp_path / "no-such.sock")
    quiet = run([sys.executable, str(script), "user"], work, base_env(EMBEDLAB_WARM=missing))
    verbose = run(
        [sys.executable, str(script), "user"], work, base_env(EMBEDLAB_WARM=missing, EMBEDLAB_WARM_VERBOSE="1")
    )

    for proc in (quiet, verbose):
        assert proc.returncode == 2
        out, (_, parent, preloaded) = split_probe(proc.stdout)
        assert out == split_probe(direct.stdout)[0]
        assert (parent, preloaded) == (str(os.getpid()), "False")  # ran in the client itself
    assert quiet.stderr == direct.stderr  # silent
    (note,) = notes(verbose.stderr)
    assert "running in-process" in note and missing in note
    assert without_notes(verbose.stderr) == direct.stderr


def test_server_refuses_a_different_import_time_environment(tmp_path: Path, script: Path, work: Path) -> None:
    server = Server(tmp_path, HF_HUB_OFFLINE="1")
    try:
        env = server.env(HF_HUB_OFFLINE="0", EMBEDLAB_WARM_VERBOSE="1")
        proc = run([sys.executable, str(script), "ok"], work, env)
        same = run([sys.executable, str(script), "ok"], work, server.env())
    finally:
        server.stop()
    direct = run([sys.executable, str(script), "ok"], work, base_env(HF_HUB_OFFLINE="0"))

    assert proc.returncode == 0
    out, (_, parent, preloaded) = split_probe(proc.stdout)
    assert out == split_probe(direct.stdout)[0]
    assert (parent, preloaded) == (str(os.getpid()), "False")  # in-process: the child would see the server's value
    assert "running in-process" in proc.stderr and "HF_HUB_OFFLINE" in proc.stderr
    assert without_notes(proc.stderr) == direct.stderr
    assert split_probe(same.stdout)[1][1:] == [str(server.pid), "True"]  # the same value is served


def test_interpreter_options_are_not_served(server: Server, script: Path, work: Path) -> None:
    proc = run([sys.executable, "-X", "importtime", str(script), "ok"], work, server.env(EMBEDLAB_WARM_VERBOSE="1"))

    assert proc.returncode == 0
    assert split_probe(proc.stdout)[1][1:] == [str(os.getpid()), "False"]
    assert "interpreter options -X importtime" in proc.stderr


def test_run_stage_called_as_a_library_runs_in_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from embedlab.errors import run_stage

    monkeypatch.setenv("EMBEDLAB_WARM", str(tmp_path / "unused.sock"))
    calls = []
    run_stage(lambda: calls.append(os.getpid()))
    assert calls == [os.getpid()]


def server_processes(socket_path: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if socket_path.encode() in (entry / "cmdline").read_bytes() and not gone(int(entry.name)):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def test_warm_run_exits_with_command_status_and_cleans_up(work: Path) -> None:
    code = "import os, sys; print(os.environ['EMBEDLAB_WARM']); sys.exit(7)"
    proc = run([*WARM, "run", "--preload", "colorsys", "--", sys.executable, "-c", code], work, base_env())

    assert proc.returncode == 7, proc.stderr
    socket_path = proc.stdout.strip()
    assert not os.path.exists(socket_path) and not os.path.exists(os.path.dirname(socket_path))
    assert server_processes(socket_path) == []


def test_warm_run_cleans_up_on_ctrl_c(work: Path) -> None:
    code = "import os, sys, time; print(os.environ['EMBEDLAB_WARM'], flush=True); time.sleep(600)"
    cmd = [*WARM, "run", "--preload", "colorsys", "--", sys.executable, "-c", code]
    # its own process group, as a terminal's foreground job: Ctrl-C signals the whole group
    proc = subprocess.Popen(cmd, cwd=work, env=base_env(), stdout=subprocess.PIPE, text=True, start_new_session=True)
    socket_path = read_line(proc.stdout).strip()
    assert socket_path and os.path.exists(socket_path)
    os.killpg(proc.pid, signal.SIGINT)

    assert proc.wait(TIMEOUT) == 128 + 2
    proc.stdout.close()
    assert not os.path.exists(os.path.dirname(socket_path))
    assert server_processes(socket_path) == []


def test_sigkilled_run_leaves_no_directory(tmp_path: Path) -> None:
    """#16: `run` killed outright cannot clean up; its server sees the control socket close and does."""
    server = Server(tmp_path)
    server.proc.kill()
    server.proc.wait(TIMEOUT)

    assert wait_for(lambda: gone(server.pid))
    assert not server.socket.parent.exists()
    server.proc.stdin.close()  # the command (not killed by a SIGKILL to run) ends too
    server.proc.stdout.close()


def test_next_run_removes_directories_of_killed_runs(tmp_path: Path, work: Path) -> None:
    """#16: when the server is killed outright as well, the next `run` removes the directory (its pid is gone)."""
    temp = tmp_path / "temp"
    temp.mkdir()
    server = Server(tmp_path, TMPDIR=str(temp))
    os.kill(server.pid, signal.SIGKILL)
    server.proc.kill()
    server.proc.wait(TIMEOUT)
    server.proc.stdin.close()
    server.proc.stdout.close()
    killed = server.socket.parent
    assert killed.parent == temp and killed.exists()
    live = temp / f"embedlab-warm-{os.getpid()}-x"  # a run still running (this process's pid)
    unrelated = temp / "embedlab-warm-x"
    live.mkdir()
    unrelated.mkdir()

    cmd = [*WARM, "run", "--preload", "colorsys", "--", sys.executable, "-c", "pass"]
    proc = run(cmd, work, base_env(TMPDIR=str(temp)))

    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in temp.iterdir()) == sorted([live.name, unrelated.name])


def test_real_preload_torch(tmp_path: Path, work: Path) -> None:
    """torch imported once by the server; the child finds it in sys.modules and runs a tensor op."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        f"import sys\nsys.path.insert(0, {str(SRC)!r})\nfrom embedlab.errors import run_stage\n"
        "PRELOADED = 'torch' in sys.modules\n\n\ndef main():\n    import torch\n\n"
        "    print(PRELOADED, torch.ones(3).sum().item(), torch.get_num_threads() >= 1)\n\n\n"
        "if __name__ == '__main__':\n    run_stage(main)\n"
    )
    proc = run([*WARM, "run", "--preload", "torch", "--", sys.executable, str(probe)], work, base_env())

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "True 3.0 True\n"
    assert "1/1 modules preloaded" in proc.stderr
