-- Self-service onboarding (SPEC §9): policy templates editable by admins,
-- and requests for a new team that an admin approves (running the
-- provisioning pipeline, each step's status kept in `steps`) or rejects.
create table config_template (
    name        text primary key not null,
    content     text not null,
    updated_by  text not null,
    updated_at  bigint not null
);

create table onboarding_request (
    onboarding_request_id text primary key not null,
    team_name             text not null,
    team_slug             text not null,
    lead_email            text not null,
    use_case              text not null,
    template              text not null,
    monthly_budget_micros bigint not null,
    -- JSON list of model names (or patterns)
    models                text not null,
    environment           text not null,
    -- pending | provisioning | ready | failed | rejected
    status                text not null,
    reason                text,
    -- JSON list of {"step", "status", "detail", "at"}
    steps                 text not null,
    team_id               text,
    gateway_name          text,
    gateway_url           text,
    -- the new gateway key, sealed, until the requester has seen it once
    key_sealed            text,
    requested_by          text not null,
    created_at            bigint not null,
    decided_by            text,
    decided_at            bigint
);
create index onboarding_request_status on onboarding_request (status, created_at);
