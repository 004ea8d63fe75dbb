-- Versioned configurations per team and environment (SPEC §8). Versions are
-- numbered from 1; the highest is current. Only lint-clean content is
-- stored (the server lints before inserting). A rollback adds a new version
-- with an old one's content.
create table config_version (
    config_version_id text primary key not null,
    team_id      text not null references team (team_id),
    environment  text not null,
    version      bigint not null,
    content      text not null,
    content_hash text not null,
    -- git / console / api
    source       text not null check (source in ('git', 'console', 'api')),
    git_commit   text,
    git_author   text,
    message      text,
    author       text not null,
    created_at   bigint not null,
    constraint config_version_key unique (team_id, environment, version)
);

-- Managed gateways (`kt gateway run --team --environment`) and file-based
-- ones given an environment report it, so the fleet view can compare the
-- hash they run with the environment's current version (drift).
alter table gateway add column environment text;
