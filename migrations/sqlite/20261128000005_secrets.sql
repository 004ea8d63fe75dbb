-- Provider secrets, AES-256-GCM-SIV encrypted under the master key
-- (`KT_MASTER_KEY`), bound to their name and team. `team_id` '' = org-wide.
create table secret (
    secret_id  text primary key not null,
    name       text not null,
    team_id    text not null default '',
    sealed     text not null,
    created_at bigint not null,
    updated_at bigint not null,
    updated_by text not null,
    constraint secret_name_team_key unique (name, team_id)
);

-- Organisation-wide defaults per provider kind (SPEC §6 `PUT /v1/providers/{kind}`):
-- a config target of that kind without its own base_url / secret_key_ref uses them.
create table provider_default (
    kind        text primary key not null,
    base_url    text,
    secret_name text,
    updated_at  bigint not null,
    updated_by  text not null
);

-- Installation facts: `master_key_check` holds a value sealed with the
-- master key, so a wrong KT_MASTER_KEY is noticed at start and by `kt doctor`.
create table kt_meta (
    name  text primary key not null,
    value text not null
);
