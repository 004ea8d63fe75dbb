import { ADMIN_EMAIL } from './fixtures';

// What the escalation browser tests (with and without JavaScript) share: the team
// configuration that holds prompts with an email address, and how the console names things.

/** How the console records the demo admin's changes. */
export const ADMIN_ACTOR = `${ADMIN_EMAIL} (console)`;

/** The policy of the team's configuration that holds prompts with an email address. */
export const POLICY = 'pii-review';
export const REASON = 'pii_detected:email';
export const MODEL = 'gpt-4o-mini';

/** A managed gateway switches to a new current version within 5 seconds (SPEC §8). */
export const CONFIG_SWITCH_TIMEOUT = 12_000;

/** The team's configuration: escalate prompts with an email address; one model. */
export const CONFIG = `policies:
  - name: ${POLICY}
    type: pii_detection
    action: escalate
    entities: [email]
  - name: models
    type: model_filter
    allowed_models: ["${MODEL}"]
    enabled: true
providers:
  targets:
    - id: openai
      provider: {kind: openai}
`;
