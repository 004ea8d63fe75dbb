"""The official Anthropic Python SDK, unchanged, against a kt gateway: only base_url and api_key
differ. The SDK appends /v1/messages to base_url itself and sends the key as `x-api-key`."""

from __future__ import annotations

import anthropic
import pytest
from anthropic import Anthropic

from conftest import KtDemo, Ledger

MODEL = "claude-sonnet-4-20250514"
MESSAGES = [{"role": "user", "content": "Say hello in five words."}]
PII_SYSTEM = "The user is Jane Doe, jane.doe@example.com; address her by email."
WRONG_KEY = "kt_gk_" + "x" * 40


@pytest.fixture(scope="module")
def client(kt: KtDemo):
    with Anthropic(base_url=kt.gateway_url, api_key=kt.key) as c:
        yield c


def test_messages_create(client: Anthropic) -> None:
    msg = client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, system="be brief")

    assert msg.type == "message"
    assert msg.role == "assistant"
    assert msg.model == MODEL
    assert msg.id
    texts = [block.text for block in msg.content if block.type == "text"]
    assert texts and "".join(texts).strip()
    assert msg.stop_reason in {"end_turn", "max_tokens", "stop_sequence"}
    assert msg.usage.input_tokens > 0
    assert msg.usage.output_tokens > 0


def test_messages_stream(client: Anthropic, ledger: Ledger) -> None:
    with client.messages.stream(
        model=MODEL, max_tokens=100, messages=MESSAGES, system="be brief"
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    ledger.record(kind="anthropic_stream", model=MODEL)

    assert text.strip()
    assert final.model == MODEL
    assert "".join(b.text for b in final.content if b.type == "text") == text
    assert final.stop_reason in {"end_turn", "max_tokens", "stop_sequence"}
    assert final.usage.input_tokens > 0
    assert final.usage.output_tokens > 0


def test_wrong_key_is_authentication_error(kt: KtDemo, ledger: Ledger) -> None:
    with Anthropic(base_url=kt.gateway_url, api_key=WRONG_KEY) as bad:
        with pytest.raises(anthropic.AuthenticationError) as exc:
            bad.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    ledger.record(kind="auth_error")
    assert exc.value.status_code == 401


def test_pii_in_system_is_blocked_as_conflict(client: Anthropic, ledger: Ledger) -> None:
    with pytest.raises(anthropic.APIStatusError) as exc:
        client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, system=PII_SYSTEM)
    ledger.record(kind="block", model=MODEL, policy="pii-protection", reason="pii_detected")
    err = exc.value
    assert err.status_code == 409
    assert isinstance(err, anthropic.ConflictError)
    assert isinstance(err.body, dict)
    assert err.body["type"] == "error"  # Anthropic's error envelope
    assert err.body["error"]["type"] == "policy_violation"
    assert err.body["error"]["policy"] == "pii-protection"
    assert "jane.doe@example.com" not in err.message


def test_policy_block_is_sent_once(kt: KtDemo) -> None:
    sent = []
    http = anthropic.DefaultHttpxClient(event_hooks={"request": [sent.append]})
    with Anthropic(base_url=kt.gateway_url, api_key=kt.key, http_client=http) as c:
        with pytest.raises(anthropic.ConflictError) as exc:
            c.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, system=PII_SYSTEM)
    assert len(sent) == 1, f"the SDK sent the blocked request {len(sent)} times"
    assert exc.value.response.headers.get("x-should-retry") == "false"
