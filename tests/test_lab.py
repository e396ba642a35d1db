"""`make lab` really serves: JupyterLab starts headless, answers /lab and lists the notebooks."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest


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


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("lab")
    port, token = free_port(), secrets.token_hex(8)
    workspace = tmp_path / "workspace"
    cmd = [
        sys.executable, "-m", "course_lib.cli", "lab", "--workspace", str(workspace), "--",
        "--ip=127.0.0.1", f"--port={port}", "--no-browser", f"--IdentityProvider.token={token}",
        "--ServerApp.port_retries=0",
    ]  # fmt: skip
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited early:\n{proc.stdout.read().decode()}")
            try:
                if get(f"{base}/api/status?token={token}")[0] == 200:
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not answer within 90 s")
        yield base, token, workspace
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_lab_serves_the_learners_copy_of_the_notebooks(lab):
    base, token, workspace = lab
    status, body = get(f"{base}/lab?token={token}")
    assert status == 200 and b"JupyterLab" in body

    status, body = get(f"{base}/api/contents?token={token}")
    assert status == 200
    names = {item["name"] for item in json.loads(body)["content"]}
    assert "00_setup" in names

    status, body = get(f"{base}/api/contents/00_setup/00_setup.ipynb?token={token}")
    assert status == 200
    notebook = json.loads(body)["content"]
    assert notebook["metadata"]["kernelspec"]["name"] == "diffusion-course"
    assert (workspace / "00_setup" / "00_setup.ipynb").exists()


def test_lab_refuses_requests_without_the_token(lab):
    base, _, _ = lab
    status, _ = get(f"{base}/api/contents")
    assert status == 403
