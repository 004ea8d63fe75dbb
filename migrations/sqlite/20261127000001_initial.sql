-- kt: initial schema (SQLite). Times are unix milliseconds (UTC); money is micro-USD.
create table team (
    team_id     text primary key not null,
    name        text not null,
    slug        text not null,
    created_at  bigint not null,
    constraint team_slug_key unique (slug)
);

create table app_user (
    user_id       text primary key not null,
    email         text not null,
    password_hash text not null,
    role          text not null,
    team_id       text references team (team_id),
    created_at    bigint not null,
    constraint app_user_email_key unique (email)
);

create table api_token (
    token_id     text primary key not null,
    name         text not null,
    token_type   text not null check (token_type in ('access', 'gateway')),
    team_id      text references team (team_id),
    prefix       text not null,
    token_hash   text not null,
    created_at   bigint not null,
    revoked_at   bigint,
    constraint api_token_hash_key unique (token_hash)
);

create table gateway (
    gateway_id   text primary key not null,
    name         text not null,
    teams        text not null default '',
    address      text not null,
    version      text not null,
    config_hash  text not null,
    demo         boolean not null default false,
    started_at   bigint not null,
    last_seen_at bigint not null,
    constraint gateway_name_key unique (name)
);

create table event (
    event_id        text primary key not null,
    created_at      bigint not null,
    gateway_id      text not null,
    gateway_name    text not null,
    team_id         text,
    token_id        text,
    model           text not null,
    provider_target text,
    provider_kind   text,
    verdict         text not null,
    reason          text,
    policy          text,
    input_tokens    bigint not null default 0,
    output_tokens   bigint not null default 0,
    cost_micros     bigint not null default 0,
    latency_ms      bigint not null default 0,
    upstream_status bigint,
    streamed        boolean not null default false,
    demo            boolean not null default false
);
create index event_created_at_idx on event (created_at desc);
create index event_team_created_at_idx on event (team_id, created_at desc);
create index event_gateway_created_at_idx on event (gateway_id, created_at desc);

-- Hourly rollup maintained in the same transaction as each event batch: the
-- console reads totals from here, never by scanning `event`.
create table event_rollup_hour (
    bucket_start  bigint not null,
    team_id       text not null,
    gateway_id    text not null,
    model         text not null,
    verdict       text not null,
    requests      bigint not null,
    input_tokens  bigint not null,
    output_tokens bigint not null,
    cost_micros   bigint not null,
    latency_ms_sum bigint not null,
    constraint event_rollup_hour_pkey primary key (bucket_start, team_id, gateway_id, model, verdict)
);
