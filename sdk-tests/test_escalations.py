"""Escalations with the official OpenAI SDK (SPEC §10): a team onboarded on the `reg`
template, whose `regulated-review` content filter holds requests about termination letters
for a human. The unchanged SDK gets 409 `escalation_required` with the escalation's id; an org
admin approves it (the team names no reviewers, so its escalations go to the org admins); the
same request resent with `X-Escalation-Id` is answered once; a second resend, and a resend
with other content, are refused again."""

from __future__ import annotations

import openai
import pytest

from conftest import KtDemo, api_call, onboard

HELD = "Please draft a termination letter for our supplier Initech."


def _held(client: openai.OpenAI, content: str, escalation_id: str | None = None) -> openai.ConflictError:
    """Sends `content`; it must be refused with 409: held for review (`escalation_required`)
    without an id, or refused (`input_blocked`) when the id does not let it through."""
    headers = {"X-Escalation-Id": escalation_id} if escalation_id else None
    with pytest.raises(openai.ConflictError) as caught:
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": content}], extra_headers=headers
        )
    body = caught.value.body if isinstance(caught.value.body, dict) else {}
    expected = "input_blocked" if escalation_id else "escalation_required"
    assert body.get("code") == expected, caught.value.body
    if escalation_id:
        assert "does not allow this request" in body.get("message", ""), body
    return caught.value


def test_an_approved_request_passes_once_with_the_escalation_id(kt: KtDemo, admin_token: str) -> None:
    _, done = onboard(kt, admin_token, "sdk-reviewed", "SDK Reviewed", "reg", ["gpt-4o"])
    client = openai.OpenAI(base_url=done["gateway_url"] + "/v1", api_key=done["gateway_key"], max_retries=0)

    # Other requests are answered; this one is held for a reviewer.
    assert client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Summarise our supplier policy."}]
    ).choices[0].message.content
    err = _held(client, HELD)
    escalation_id = err.body["escalation_id"]

    # Before a decision, the id does not let it through.
    _held(client, HELD, escalation_id)

    status, shown = api_call(kt, admin_token, "GET", f"/v1/escalations/{escalation_id}")
    assert status == 200 and shown["policy"] == "regulated-review", shown
    assert shown["entities"] == ["termination letter"], shown
    assert "Initech" not in str(shown), "the template keeps no prompt for reviewers"
    status, resolved = api_call(kt, admin_token, "POST", f"/v1/escalations/{escalation_id}/resolve",
                                {"outcome": "approved", "note": "legal signed off"})
    assert status == 200 and resolved["status"] == "approved", resolved

    # Other content never uses the approval; the same request passes exactly once.
    _held(client, HELD + " Make it short.", escalation_id)
    answer = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": HELD}],
        extra_headers={"X-Escalation-Id": escalation_id},
    )
    assert answer.choices[0].message.content, answer
    _held(client, HELD, escalation_id)
    status, shown = api_call(kt, admin_token, "GET", f"/v1/escalations/{escalation_id}")
    assert status == 200 and shown["used_at"], shown
