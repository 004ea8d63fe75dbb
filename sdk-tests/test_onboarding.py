"""Onboarding with the official OpenAI SDK (SPEC §9): an API request for a new team, an
admin's approval (the pipeline starts the team's own gateway through `kt serve`'s local
runner), then the unchanged SDK answered through that gateway with the key from the
approval. In `kt demo`, onboarded teams reach the built-in demo provider through the
organisation's OpenAI connection. Also validates Kubernetes manifests: the ones
kt renders for the new tenant and kt's own deploy/kubernetes/, against the Kubernetes JSON
schemas (kubernetes-validate, strict: unknown fields fail)."""

from __future__ import annotations

import time
from pathlib import Path

import kubernetes_validate
import openai
import yaml

from conftest import KtDemo, api_call, onboard

REPO = Path(__file__).resolve().parent.parent
K8S_VERSION = "1.31.0"


def _validate(text: str, origin: str) -> list[str]:
    kinds = []
    for doc in yaml.safe_load_all(text):
        if not doc:
            continue
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        kinds.append(doc["kind"])
    assert kinds, f"no manifest in {origin}"
    return kinds


def test_an_onboarded_team_is_answered_through_its_own_gateway(kt: KtDemo, admin_token: str) -> None:
    filed_at = time.monotonic()
    request_id, done = onboard(kt, admin_token, "sdk-onboarded", "SDK Onboarded", "std", ["gpt-4o-mini"])
    assert [s["status"] for s in done["steps"]] == ["done"] * 5, done["steps"]

    client = openai.OpenAI(base_url=done["gateway_url"] + "/v1", api_key=done["gateway_key"])
    answer = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello from a new team"}]
    )
    elapsed = time.monotonic() - filed_at
    assert answer.choices[0].message.content, answer
    assert answer.usage and answer.usage.total_tokens > 0, answer
    print(f"request and approval → first SDK answer through the new gateway: {elapsed:.2f} s")
    assert elapsed < 10, f"onboarding took {elapsed:.1f} s (target: under 10 s)"

    # The template's policies, with the request's models: another model is refused.
    try:
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
        raise AssertionError("gpt-4o was not requested but was answered")
    except openai.APIStatusError as err:
        assert err.status_code == 409, err

    # The tenant's Kubernetes manifests are valid, and carry no secret value.
    status, text = api_call(kt, admin_token, "GET", f"/v1/onboarding/requests/{request_id}/manifests")
    assert status == 200, text
    kinds = _validate(text, "the rendered tenant manifests")
    assert kinds == ["Namespace", "ConfigMap", "Deployment", "Service", "NetworkPolicy"], kinds
    assert done["gateway_key"] not in text


def test_kts_own_kubernetes_manifests_are_valid() -> None:
    files = sorted((REPO / "deploy" / "kubernetes").glob("*.yaml"))
    assert files, "deploy/kubernetes/*.yaml"
    for path in files:
        kinds = _validate(path.read_text(), str(path))
        assert "Deployment" in kinds, (path, kinds)
