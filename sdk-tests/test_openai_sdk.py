"""The official OpenAI Python SDK, unchanged, against a kt gateway: only base_url and api_key
differ from what an application would use against api.openai.com."""

from __future__ import annotations

import asyncio

import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from conftest import KtDemo, Ledger

ALLOWLISTED_EXACT_MODELS = {"gpt-4o", "gpt-4o-mini", "claude-sonnet-4-20250514"}
PROMPT = [{"role": "user", "content": "Say hello in five words."}]
PII_PROMPT = [{"role": "user", "content": "Send the summary to jane.doe@example.com please."}]
WRONG_KEY = "kt_gk_" + "x" * 40


@pytest.fixture(scope="module")
def client(kt: KtDemo):
    with OpenAI(base_url=f"{kt.gateway_url}/v1", api_key=kt.key) as c:
        yield c


def test_chat_completion(client: OpenAI) -> None:
    resp = client.chat.completions.create(model="gpt-4o", messages=PROMPT)

    assert resp.model == "gpt-4o"
    assert resp.object == "chat.completion"
    assert resp.id
    assert len(resp.choices) == 1
    choice = resp.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content and choice.message.content.strip()
    assert choice.finish_reason == "stop"
    assert resp.usage is not None
    assert resp.usage.prompt_tokens > 0
    assert resp.usage.completion_tokens > 0
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


def test_chat_completion_stream(client: OpenAI, ledger: Ledger) -> None:
    """stream=True without stream_options: every chunk carries a choice, as from OpenAI."""
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, stream=True)
    ledger.record(kind="openai_stream", model="gpt-4o-mini")
    parts, finish_reasons, n = [], [], 0
    for chunk in stream:
        n += 1
        assert chunk.object == "chat.completion.chunk"
        assert chunk.model == "gpt-4o-mini"
        # Applications index choices[0] on every chunk: an empty `choices` would raise here.
        choice = chunk.choices[0]
        parts.append(choice.delta.content or "")
        if choice.finish_reason:
            finish_reasons.append(choice.finish_reason)
    text = "".join(parts)
    assert n > 1, "expected the answer in several chunks"
    assert text.strip()
    assert finish_reasons == ["stop"]


def test_chat_completion_stream_include_usage(client: OpenAI, ledger: Ledger) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=PROMPT,
        stream=True,
        stream_options={"include_usage": True},
    )
    ledger.record(kind="openai_stream", model="gpt-4o-mini")
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    last = chunks[-1]
    assert last.usage is not None, "with include_usage the last chunk carries usage"
    assert last.usage.prompt_tokens > 0
    assert last.usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])


def test_async_client_stream(kt: KtDemo, ledger: Ledger) -> None:
    async def main() -> tuple[str, int]:
        async with AsyncOpenAI(base_url=f"{kt.gateway_url}/v1", api_key=kt.key) as aclient:
            stream = await aclient.chat.completions.create(
                model="gpt-4o-mini", messages=PROMPT, stream=True
            )
            parts, n = [], 0
            async for chunk in stream:
                n += 1
                parts.append(chunk.choices[0].delta.content or "")
            return "".join(parts), n

    text, n = asyncio.run(main())
    ledger.record(kind="openai_stream", model="gpt-4o-mini")
    assert n > 1
    assert text.strip()


def test_models_list(client: OpenAI) -> None:
    models = list(client.models.list())
    assert {m.id for m in models} == ALLOWLISTED_EXACT_MODELS
    assert all(m.object == "model" for m in models)


def test_models_list_has_created(kt: KtDemo) -> None:
    with OpenAI(
        base_url=f"{kt.gateway_url}/v1", api_key=kt.key, _strict_response_validation=True
    ) as strict:
        models = list(strict.models.list())
    assert all(isinstance(m.created, int) for m in models)


def test_wrong_key_is_authentication_error(kt: KtDemo, ledger: Ledger) -> None:
    with OpenAI(base_url=f"{kt.gateway_url}/v1", api_key=WRONG_KEY) as bad:
        with pytest.raises(openai.AuthenticationError) as exc:
            bad.chat.completions.create(model="gpt-4o", messages=PROMPT)
    ledger.record(kind="auth_error")
    assert exc.value.status_code == 401


def test_pii_is_blocked_as_conflict(client: OpenAI, ledger: Ledger) -> None:
    with pytest.raises(openai.ConflictError) as exc:
        client.chat.completions.create(model="gpt-4o", messages=PII_PROMPT)
    ledger.record(kind="block", model="gpt-4o", policy="pii-protection", reason="pii_detected")
    err = exc.value
    assert err.status_code == 409
    body = err.response.json()
    assert body["error"]["type"] == "policy_violation"
    assert body["error"]["policy"] == "pii-protection"
    assert body["error"]["code"] == "input_blocked"
    # What the SDK itself parsed out of the body.
    assert err.type == "policy_violation"
    assert err.code == "input_blocked"
    assert "jane.doe@example.com" not in err.message


def test_model_outside_allowlist_is_conflict(client: OpenAI, ledger: Ledger) -> None:
    with pytest.raises(openai.ConflictError) as exc:
        client.chat.completions.create(model="gpt-3.5-turbo", messages=PROMPT)
    ledger.record(
        kind="block", model="gpt-3.5-turbo", policy="model-allowlist", reason="model_not_allowed"
    )
    body = exc.value.response.json()
    assert body["error"]["type"] == "policy_violation"
    assert body["error"]["policy"] == "model-allowlist"


def test_policy_block_is_sent_once(kt: KtDemo) -> None:
    sent = []
    http = openai.DefaultHttpxClient(event_hooks={"request": [sent.append]})
    with OpenAI(base_url=f"{kt.gateway_url}/v1", api_key=kt.key, http_client=http) as c:
        with pytest.raises(openai.ConflictError) as exc:
            c.chat.completions.create(model="gpt-4o", messages=PII_PROMPT)
    assert len(sent) == 1, f"the SDK sent the blocked request {len(sent)} times"
    assert exc.value.response.headers.get("x-should-retry") == "false"
