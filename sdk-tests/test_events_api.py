"""After the SDK calls (this test runs last): the control-plane events API shows them.

The session's data dir is fresh, so every event here comes from `kt demo`'s own first request
(non-streamed gpt-4o-mini) or from this session's tests."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from conftest import KtDemo, Ledger, wait_for_events

pytestmark = pytest.mark.after_calls


def _streamed(events: list[dict[str, Any]], model: str) -> list[dict[str, Any]]:
    return [e for e in events if e["model"] == model and e["streamed"] and e["verdict"] == "allow"]


def _blocked(events: list[dict[str, Any]], call: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e
        for e in events
        if e["model"] == call["model"]
        and e["verdict"] == "block"
        and e["policy"] == call["policy"]
        and (e["reason"] or "").startswith(call["reason"])
    ]


def _summary(events: list[dict[str, Any]]) -> str:
    keys = ("model", "verdict", "reason", "policy", "streamed", "input_tokens", "output_tokens",
            "cost_usd", "upstream_status")
    return "\n".join(str({k: e.get(k) for k in keys}) for e in events)


def test_events_show_the_sdk_calls(kt: KtDemo, admin_token: str, ledger: Ledger) -> None:
    if not ledger.calls:
        pytest.skip("no SDK call was made in this session (run the whole directory)")

    streams = Counter(c["model"] for c in ledger.calls if c["kind"].endswith("_stream"))
    blocks = ledger.of("block")
    auth_errors = len(ledger.of("auth_error"))

    def complete(events: list[dict[str, Any]]) -> bool:
        return (
            all(len(_streamed(events, m)) >= n for m, n in streams.items())
            and all(_blocked(events, call) for call in blocks)
            and sum(e["upstream_status"] == 401 for e in events) >= auth_errors
        )

    events = wait_for_events(kt, admin_token, complete)
    shown = _summary(events)

    # Streamed requests (OpenAI with and without include_usage, async, Anthropic): each one
    # is an event marked streamed, with provider-reported tokens and a non-zero cost.
    for model, n in streams.items():
        got = _streamed(events, model)
        assert len(got) >= n, f"{n} streamed {model} request(s) sent, {len(got)} events:\n{shown}"
        for e in got:
            assert e["input_tokens"] > 0 and e["output_tokens"] > 0, e
            assert e["cost_usd"] > 0, f"streamed request recorded at $0: {e}"
            assert e["upstream_status"] == 200, e

    # Blocked requests: verdict block, the policy that blocked, HTTP 409.
    for call in blocks:
        got = _blocked(events, call)
        assert got, f"no block event for {call}:\n{shown}"
        for e in got:
            assert e["upstream_status"] == 409, e
            assert e["output_tokens"] == 0 and e["cost_usd"] == 0, e

    # Wrong keys are recorded too (every request, allowed or not, is an event).
    rejected = [e for e in events if e["upstream_status"] == 401]
    assert len(rejected) >= auth_errors, shown
    assert all(e["verdict"] != "allow" for e in rejected), shown
