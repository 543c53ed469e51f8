"""The service as it is deployed: uvicorn in a process of its own on a free loopback port,
for the tests that need a real server (the HTTP audit, shutdown, logs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import VAR_DIR
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION = {
    "PORTAL_ENV": "production",
    "PORTAL_SECRET_KEY": "k" * 40,
    "PORTAL_SMTP_URL": "smtp://127.0.0.1:1",
}
# Importing the app on a busy two-core machine takes seconds.
START_SECONDS = 60


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, as a process manager stops it; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


@contextmanager
def served(
    database_url: str, environment: Mapping[str, str], *, command: list[str] | None = None
) -> Iterator[Server]:
    """`portal serve` (or `command`, given the port) against `database_url`, stopped after."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PORTAL_VAR_DIR": str(VAR_DIR),
        "PORTAL_MAIL_WORKER_IN_PROCESS": "false",
        "PORTAL_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "PORTAL_PORTAL_APP_URL": f"http://127.0.0.1:{port}/portal",
        **environment,
    }
    arguments = command or ["serve"]
    log = VAR_DIR / f"server-{port}.log"
    with log.open("w") as output:
        process = subprocess.Popen(  # noqa: S603  (this interpreter, our own arguments)
            [sys.executable, "-m", "app.cli", *arguments, "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    server = Server(url=f"http://127.0.0.1:{port}", process=process, log=log)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if process.poll() is not None:
                raise AssertionError(f"the server did not start:\n{server.output()}")
            try:
                if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the server did not answer:\n{server.output()}")
            time.sleep(0.2)
        yield server
    finally:
        server.stop()
