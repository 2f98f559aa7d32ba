"""The warm-start fork server (embedlab.warm): a stage run through it behaves as when run directly, only faster.

Most tests preload only ``colorsys`` (a stdlib module nothing else imports, so a script can tell whether it runs in a
child of the server) to keep them fast; one preloads torch to show a real preload works.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
# `python -m embedlab.warm` without needing the package installed: this checkout's src/ first on sys.path
WARM = [
    sys.executable,
    "-c",
    f"import sys; sys.path.insert(0, {str(SRC)!r}); from embedlab.warm import main; sys.exit(main())",
]

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
        with open(sys.argv[2], "w") as file:
            file.write(str(os.getpid()))
        time.sleep(60)
    if mode == "where":
        import embedlab.errors

        print("embedlab", embedlab.__file__, embedlab.errors.__file__, getattr(embedlab, "MARK", None))
    if mode == "threads":  # the end of a Python process: non-daemon threads joined, executors shut, atexit run
        import atexit
        import threading
        from concurrent.futures import ThreadPoolExecutor

        atexit.register(print, "atexit callback")
        ThreadPoolExecutor(2).submit(print, "executor task")
        threading.Thread(target=lambda: (time.sleep(0.3), print("thread done"))).start()


if __name__ == "__main__":
    run_stage(main)
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
        args, cwd=cwd, env=env, input="some input", capture_output=True, text=True, umask=0o027, timeout=60
    )


def split_probe(stdout: str) -> tuple[str, list[str]]:
    """stdout without the probe line, and the probe's fields: pid, parent pid, whether colorsys was preloaded."""
    lines = stdout.splitlines(keepends=True)
    probe = [line for line in lines if line.startswith("probe ")]
    assert len(probe) == 1, stdout
    return "".join(line for line in lines if not line.startswith("probe ")), probe[0].split()[1:]


def without_notes(stderr: str) -> str:
    return "".join(line for line in stderr.splitlines(keepends=True) if not line.startswith("embedlab.warm:"))


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


class Server:
    def __init__(self, directory: Path, preload: str = "colorsys", **env: str) -> None:
        self.socket = directory / "warm.sock"
        self.log = directory / "server.log"
        with open(self.log, "w") as log:
            cmd = [*WARM, "serve", "--socket", str(self.socket), "--preload", preload]
            self.proc = subprocess.Popen(cmd, env=base_env(**env), stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        assert wait_for(lambda: self.socket.exists() or self.proc.poll() is not None, 30), self.log.read_text()
        assert self.proc.poll() is None, self.log.read_text()

    def env(self, **extra: str) -> dict[str, str]:
        return base_env(EMBEDLAB_WARM=str(self.socket), **extra)

    def stop(self) -> None:
        self.proc.terminate()
        assert self.proc.wait(10) == 0
        assert not self.socket.exists()


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
    assert (warm_parent, warm_preloaded) == (str(server.proc.pid), "True")  # a forked child of the server
    if mode == "threads":
        assert warm_out.endswith("executor task\nthread done\natexit callback\n")


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
    assert (parent, preloaded) == (str(server.proc.pid), "True")
    expected = f"embedlab {other_src}/embedlab/__init__.py {other_src}/embedlab/errors.py other checkout\n"
    assert out.endswith(expected)


@pytest.fixture(autouse=True)
def terminal_sigint() -> Iterator[None]:
    """SIGINT as a terminal gives it: a shell's background job (`make test &`, nohup) starts with SIGINT ignored,
    every child inherits that, and a Ctrl-C test would then wait forever for a child that cannot be interrupted."""
    old = signal.getsignal(signal.SIGINT)
    if old == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # exec'd children get SIG_DFL
    yield
    signal.signal(signal.SIGINT, old)


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
    assert wait_for(lambda: pid_file.exists() and pid_file.read_text() != "")
    child = int(pid_file.read_text())
    assert child != client.pid  # the work runs in the server's child, the client only waits
    return client, child


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 128 + 15), (signal.SIGINT, 128 + 2)])
def test_signal_to_client_is_forwarded_to_child(
    server: Server, script: Path, work: Path, signum: int, status: int
) -> None:
    client, child = start_sleeper(script, work, server.env())
    client.send_signal(signum)
    assert client.wait(10) == status  # the child died of the signal: 128+N, as in a shell
    assert wait_for(lambda: gone(child), 5)
    if signum == signal.SIGINT:
        assert "KeyboardInterrupt" in client.stderr.read()  # Python's default SIGINT handler in the child
    client.stdout.close()
    client.stderr.close()


def test_sigkill_to_client_kills_child(server: Server, script: Path, work: Path) -> None:
    client, child = start_sleeper(script, work, server.env())
    client.kill()
    client.wait(10)
    assert wait_for(lambda: gone(child), 5)  # the server saw the connection close and killed the process group
    client.stdout.close()
    client.stderr.close()


def test_child_dies_with_the_server(tmp_path: Path, script: Path, work: Path) -> None:
    server = Server(tmp_path)
    client, child = start_sleeper(script, work, server.env())
    server.proc.kill()  # no clean-up at all: the child goes by PR_SET_PDEATHSIG
    server.proc.wait()
    assert wait_for(lambda: gone(child), 5)
    assert client.wait(10) == 1
    assert "the warm server went away" in client.stderr.read()
    client.stdout.close()
    client.stderr.close()


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
    notes = [line for line in verbose.stderr.splitlines() if line.startswith("embedlab.warm:")]
    assert len(notes) == 1 and "running in-process" in notes[0] and missing in notes[0]
    assert without_notes(verbose.stderr) == direct.stderr


def test_server_refuses_a_different_import_time_environment(tmp_path: Path, script: Path, work: Path) -> None:
    server = Server(tmp_path, HF_HUB_OFFLINE="1")
    try:
        env = server.env(HF_HUB_OFFLINE="0", EMBEDLAB_WARM_VERBOSE="1")
        proc = run([sys.executable, str(script), "ok"], work, env)
        same = run([sys.executable, str(script), "ok"], work, server.env(HF_HUB_OFFLINE="1"))
    finally:
        server.stop()
    direct = run([sys.executable, str(script), "ok"], work, base_env(HF_HUB_OFFLINE="0"))

    assert proc.returncode == 0
    out, (_, parent, preloaded) = split_probe(proc.stdout)
    assert out == split_probe(direct.stdout)[0]
    assert (parent, preloaded) == (str(os.getpid()), "False")  # in-process: the child would see the server's value
    assert "running in-process" in proc.stderr and "HF_HUB_OFFLINE" in proc.stderr
    assert without_notes(proc.stderr) == direct.stderr
    assert split_probe(same.stdout)[1][1:] == [str(server.proc.pid), "True"]  # the same value is served


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
                if socket_path.encode() in (entry / "cmdline").read_bytes():
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
    code = "import os, sys, time; print(os.environ['EMBEDLAB_WARM'], flush=True); time.sleep(60)"
    cmd = [*WARM, "run", "--preload", "colorsys", "--", sys.executable, "-c", code]
    # its own process group, as a terminal's foreground job: Ctrl-C signals the whole group
    proc = subprocess.Popen(cmd, cwd=work, env=base_env(), stdout=subprocess.PIPE, text=True, start_new_session=True)
    socket_path = proc.stdout.readline().strip()
    assert os.path.exists(socket_path)
    os.killpg(proc.pid, signal.SIGINT)

    assert proc.wait(10) == 128 + 2
    proc.stdout.close()
    assert not os.path.exists(os.path.dirname(socket_path))
    assert server_processes(socket_path) == []


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
