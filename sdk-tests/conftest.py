"""Shared fixtures: one `kt demo` (console + bundled gateway with the built-in demo provider)
for the whole session, on free loopback ports and a throwaway data directory.

The demo gateway runs the policy config of configs/teams/demo.yaml: PII block, model allowlist
(gpt-4o, gpt-4o-mini, claude-sonnet-4-20250514, demo-*), 120 requests/min, $50 cost cap.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parent.parent
KT_BIN = Path(os.environ.get("KT_BIN") or REPO / "target" / "debug" / "kt")
START_TIMEOUT_S = 60
EVENTS_TIMEOUT_S = 20

# The SDKs honour proxy variables; loopback traffic must never go through a proxy.
for _var in ("NO_PROXY", "no_proxy"):
    _hosts = [h for h in os.environ.get(_var, "").split(",") if h]
    os.environ[_var] = ",".join(_hosts + ["127.0.0.1", "localhost"])


def _free_ports(count: int) -> list[int]:
    """Distinct free TCP ports: bind port 0, read the port, close (all bound at once)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


@dataclasses.dataclass
class KtDemo:
    gateway_url: str  # e.g. http://127.0.0.1:PORT (no /v1: the Anthropic SDK adds it itself)
    key: str  # the demo team's gateway key, kt_gk_…
    console_url: str  # console + control-plane API
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen

    def env(self) -> dict[str, str]:
        return _kt_env(self.data_dir)

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "<no output>"


def _kt_env(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    # Isolation: this session's own SQLite database under its own data dir.
    for var in ("KT_DATABASE_URL", "KT_MASTER_KEY", "KT_API_URL", "KT_API_TOKEN"):
        env.pop(var, None)
    env["KT_DATA_DIR"] = str(data_dir)
    env["RUST_LOG"] = "warn"
    return env


@pytest.fixture(scope="session")
def kt(tmp_path_factory: pytest.TempPathFactory):
    """(gateway URL, gateway key, console URL, data dir) of a running `kt demo`."""
    if not KT_BIN.exists():
        pytest.fail(f"{KT_BIN} is missing: build it first (cargo build -p server)", pytrace=False)
    root = tmp_path_factory.mktemp("kt")
    data_dir = root / "data"
    data_dir.mkdir()
    log_path = root / "kt-demo.log"
    console_port, gateway_port = _free_ports(2)
    cmd = [
        str(KT_BIN),
        "demo",
        "--addr",
        f"127.0.0.1:{console_port}",
        "--gateway-port",
        str(gateway_port),
    ]
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        cmd,
        cwd=root,
        env=_kt_env(data_dir),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    demo = KtDemo(
        gateway_url=f"http://127.0.0.1:{gateway_port}",
        key="",
        console_url=f"http://127.0.0.1:{console_port}",
        data_dir=data_dir,
        log_path=log_path,
        proc=proc,
    )
    key_file = data_dir / "demo-gateway-key"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"`{' '.join(cmd)}` exited with status {proc.returncode} before it was "
                    f"ready; its output:\n{demo.output()}",
                    pytrace=False,
                )
            if (
                _http_ok(f"{demo.console_url}/healthz")
                and _http_ok(f"{demo.gateway_url}/healthz")
                and key_file.exists()
                and key_file.read_text().strip()
            ):
                break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"`{' '.join(cmd)}` was not ready after {START_TIMEOUT_S} s (console "
                    f"/healthz, gateway /healthz, {key_file}); its output:\n{demo.output()}",
                    pytrace=False,
                )
            time.sleep(0.25)
        demo.key = key_file.read_text().strip()
        yield demo
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        log.close()


@pytest.fixture(scope="session")
def admin_token(kt: KtDemo) -> str:
    """A new org-admin API token, from `kt admin create-token` on the same data dir."""
    res = subprocess.run(
        [str(KT_BIN), "admin", "create-token", "--name", "sdk-tests"],
        env=kt.env(),
        cwd=kt.data_dir.parent,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"\bkt_ak_[A-Za-z0-9_\-]+", res.stdout)
    assert res.returncode == 0 and match, (
        f"kt admin create-token failed (exit {res.returncode}):\n"
        f"stdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    )
    return match.group(0)


class Ledger:
    """What the SDK tests sent, for the final check against the events API."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def record(self, **call: Any) -> None:
        self.calls.append(call)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["kind"] == kind]


@pytest.fixture(scope="session")
def ledger() -> Ledger:
    return Ledger()


def api_call(kt: KtDemo, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One control-plane API call; returns (status, JSON body or text)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        kt.console_url + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read().decode()
            ctype = resp.headers.get("content-type", "")
            return resp.status, (json.loads(raw) if "json" in ctype else raw)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read().decode() or "null")


def onboard(kt: KtDemo, token: str, slug: str, name: str, template: str, models: list[str]) -> tuple[str, dict[str, Any]]:
    """Files an onboarding request (lead lead@example.com, budget 100) and approves it; returns
    the request's id and the approval's answer, which must be `ready` (its `gateway_url` and
    `gateway_key` answer)."""
    status, req = api_call(kt, token, "POST", "/v1/onboarding/requests", {
        "team_name": name, "team_slug": slug, "lead_email": "lead@example.com",
        "template": template, "monthly_budget": 100, "models": models,
    })
    assert status == 201, req
    status, done = api_call(kt, token, "POST", f"/v1/onboarding/requests/{req['id']}/approve", {})
    assert status == 200 and done["status"] == "ready", done
    return req["id"], done


def fetch_events(kt: KtDemo, token: str, **query: Any) -> list[dict[str, Any]]:
    """GET {console}/v1/events (newest first) as an org admin."""
    query.setdefault("limit", 100)
    url = f"{kt.console_url}/v1/events?{urllib.parse.urlencode(query)}"
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = json.load(resp)
    except urllib.error.HTTPError as err:
        raise AssertionError(
            f"GET {url} answered {err.code}: {err.read().decode(errors='replace')}"
        ) from None
    assert isinstance(body, dict) and isinstance(body.get("data"), list), body
    return body["data"]


def wait_for_events(
    kt: KtDemo,
    token: str,
    done: Callable[[list[dict[str, Any]]], bool],
    timeout: float = EVENTS_TIMEOUT_S,
) -> list[dict[str, Any]]:
    """Events are written asynchronously (gateway spool): poll until `done(events)` holds,
    then return them; after `timeout`, return the last list (the caller's asserts explain)."""
    deadline = time.monotonic() + timeout
    while True:
        events = fetch_events(kt, token)
        if done(events) or time.monotonic() > deadline:
            return events
        time.sleep(0.5)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests marked `after_calls` read what the other tests sent: run them last.
    items.sort(key=lambda item: item.get_closest_marker("after_calls") is not None)
