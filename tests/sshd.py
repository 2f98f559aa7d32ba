"""A throwaway OpenSSH server on 127.0.0.1 for testing the DVC SSH remote against a real server, not a mock.

Everything lives in a temporary folder: a fresh host key, a fresh user key (the only authorized key), an
``sshd_config`` with its own port and SFTP served by ``internal-sftp`` (what dvc-ssh talks to). The server runs in
the foreground (``-D``) as the current user and is stopped when the fixture ends. Debian: ``apt-get install
openssh-server`` (``.ci/run`` does); without ``/usr/sbin/sshd`` the tests that need it skip.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"


def sshd_available() -> bool:
    return Path(SSHD).is_file() and Path(SSH_KEYGEN).is_file()


@dataclass
class SshServer:
    host: str
    port: int
    user: str
    keyfile: Path  # the client's private key
    root: Path  # a folder on the server the user may write (the remote's storage goes below it)
    proc: subprocess.Popen

    def url(self, path: Path) -> str:
        return f"ssh://{self.user}@{self.host}:{self.port}{path}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> None:
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "embedlab-tests", "-f", str(path)], check=True)


def _wait_for_banner(port: int, proc: subprocess.Popen, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(64).startswith(b"SSH-2.0"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"sshd did not answer on 127.0.0.1:{port} within {timeout} s")


def start_sshd(workdir: Path) -> SshServer:
    """Start sshd with fresh keys under ``workdir`` (must not be world-writable: StrictModes is off anyway)."""
    workdir.mkdir(parents=True, exist_ok=True)
    host_key, user_key = workdir / "host_ed25519", workdir / "user_ed25519"
    _keygen(host_key)
    _keygen(user_key)
    authorized = workdir / "authorized_keys"
    shutil.copy(user_key.with_suffix(".pub"), authorized)
    authorized.chmod(0o600)
    port = _free_port()
    config = workdir / "sshd_config"
    config.write_text(
        "\n".join(
            [
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"PidFile {workdir / 'sshd.pid'}",
                f"AuthorizedKeysFile {authorized}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",  # CI runs as root; key only
                "StrictModes no",  # temp folders' permissions are not sshd's business here
                "UsePAM no",
                "Subsystem sftp internal-sftp",  # dvc-ssh speaks SFTP
                "LogLevel ERROR",
                "",
            ]
        )
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir (Debian creates it at boot)
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(config), "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_banner(port, proc)
    except Exception:
        stop_sshd_proc(proc)
        raise
    root = workdir / "srv"
    root.mkdir()
    return SshServer("127.0.0.1", port, getpass.getuser(), user_key, root, proc)


def stop_sshd_proc(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
