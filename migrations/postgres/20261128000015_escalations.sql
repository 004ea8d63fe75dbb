-- Escalations (SPEC §10): a request held by a policy whose action is
-- `escalate`, for a reviewer of its team to approve or deny. Only metadata
-- and the matched entity types are kept, never the prompt; `content_hash`
-- binds an approval to that exact request (model and messages).
create table escalation (
    escalation_id text primary key not null,
    team_id       text not null,
    gateway_id    text not null,
    token_id      text not null,
    policy        text not null,
    reason        text not null,
    model         text not null,
    -- JSON list of matched entity types
    entities      text not null,
    content_hash  text not null,
    -- pending | claimed | approved | denied
    status        text not null,
    claimed_by    text,
    resolved_by   text,
    note          text,
    created_at    bigint not null,
    expires_at    bigint not null,
    resolved_at   bigint,
    -- when an approved retry passed (once)
    used_at       bigint
);
create index escalation_team_status on escalation (team_id, status, created_at);
