"""gunicorn, started as README says (from the project folder, so it reads gunicorn.conf.py), believes a
client's X-Forwarded-Proto only when the operator says a TLS proxy is in front."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _status_with_forwarded_https(tmp_path: Path, **extra_env: str) -> tuple[int, str]:
    """The status and Location of GET /accounts/login/ sent over plain HTTP from 127.0.0.1 with
    ``X-Forwarded-Proto: https``, with DJANGO_DEBUG off (so plain HTTP is redirected to HTTPS)."""
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE", "FORWARDED_ALLOW_IPS"))
    }
    env.update(
        {
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "proxy-" + "x" * 60,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            **extra_env,
        }
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "tutor.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                connection.request("GET", "/accounts/login/", headers={"X-Forwarded-Proto": "https"})
                response = connection.getresponse()
                return response.status, response.getheader("Location") or ""
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.3)
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_without_a_proxy_a_client_cannot_claim_https(tmp_path):
    status, location = _status_with_forwarded_https(tmp_path)
    assert status == 301 and location.startswith("https://"), (status, location)


def test_behind_a_tls_proxy_on_this_host_its_header_is_believed(tmp_path):
    status, location = _status_with_forwarded_https(tmp_path, DJANGO_BEHIND_TLS_PROXY="true")
    assert status == 200, (status, location)
