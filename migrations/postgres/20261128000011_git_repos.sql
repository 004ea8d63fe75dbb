-- Git repositories whose files become configuration versions (SPEC §8):
-- `<path>/<team slug>.yaml` on a mapped branch → that team's environment.
create table git_repo (
    git_repo_id           text primary key not null,
    repo_url              text not null,
    path                  text not null,
    -- JSON object: branch name → environment
    branches              text not null,
    poll_interval_seconds bigint not null,
    -- AES-256-GCM-SIV under the master key; never returned
    access_token_sealed   text,
    created_by            text not null,
    created_at            bigint not null,
    last_polled_at        bigint
);

-- The last sync of each mapped branch: its commit, outcome and per-file
-- results (JSON), kept until the next sync replaces it.
create table git_sync (
    git_repo_id text not null,
    branch      text not null,
    environment text not null,
    commit_sha  text,
    synced_at   bigint not null,
    status      text not null,
    message     text,
    files       text not null,
    constraint git_sync_pkey primary key (git_repo_id, branch)
);
