-- Escalation routing and review (SPEC §10).
-- A team's designated reviewers: console users of that team. Escalations of
-- a team without reviewers go to the org admins.
create table team_reviewer (
    team_id  text not null references team (team_id),
    user_id  text not null references app_user (user_id),
    added_at bigint not null,
    primary key (team_id, user_id)
);

-- A personal access token acts as its user (a reviewer using the API).
alter table api_token add column user_id text references app_user (user_id);

-- The prompt of a held request, sealed with the master key, kept only when
-- the holding policy has `reviewers_see_prompt: true`, and erased when the
-- escalation is resolved or expires.
alter table escalation add column prompt_sealed text;
