"""Start ``course lab`` headless on a free loopback port, for the lab and browser tests."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Lab:
    base: str
    token: str
    workspace: Path

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base}{path}{sep}token={self.token}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, b""


@contextlib.contextmanager
def running_lab(tmp: Path, timeout: float = 120) -> Iterator[Lab]:
    """Run ``course lab`` on a fresh workspace in ``tmp``; stop it (and its kernels) on exit."""
    port, token = free_port(), secrets.token_hex(8)
    workspace = tmp / "workspace"
    cmd = [
        sys.executable, "-m", "course_lib.cli", "lab", "--workspace", str(workspace), "--",
        "--ip=127.0.0.1", f"--port={port}", "--no-browser", f"--IdentityProvider.token={token}",
        "--ServerApp.port_retries=0",
    ]  # fmt: skip
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "COURSE_MODE": "quick"}
    log = open(tmp / "lab.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    lab = Lab(f"http://127.0.0.1:{port}", token, workspace)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited early:\n{(tmp / 'lab.log').read_text()}")
            try:
                if get(lab.url("/api/status"))[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s")
            time.sleep(0.5)
        yield lab
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
