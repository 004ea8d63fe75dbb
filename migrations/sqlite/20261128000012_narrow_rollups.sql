-- Narrow rollups for the console's charts and cost breakdowns: the wide
-- rollup (team × gateway × model × verdict) of a large org holds ~25k rows
-- per month per grain; these drop one dimension each, so a page reads a
-- few thousand rows. Maintained with every event batch like the others.
create table event_verdict_hour (
    bucket_start bigint not null,
    team_id      text not null,
    gateway_id   text not null,
    verdict      text not null,
    requests     bigint not null,
    tokens       bigint not null,
    cost_micros  bigint not null,
    constraint event_verdict_hour_pkey primary key (bucket_start, team_id, gateway_id, verdict)
);
create table event_verdict_day (
    bucket_start bigint not null,
    team_id      text not null,
    gateway_id   text not null,
    verdict      text not null,
    requests     bigint not null,
    tokens       bigint not null,
    cost_micros  bigint not null,
    constraint event_verdict_day_pkey primary key (bucket_start, team_id, gateway_id, verdict)
);
create table event_model_hour (
    bucket_start bigint not null,
    team_id      text not null,
    gateway_id   text not null,
    model        text not null,
    requests     bigint not null,
    tokens       bigint not null,
    cost_micros  bigint not null,
    constraint event_model_hour_pkey primary key (bucket_start, team_id, gateway_id, model)
);
create table event_model_day (
    bucket_start bigint not null,
    team_id      text not null,
    gateway_id   text not null,
    model        text not null,
    requests     bigint not null,
    tokens       bigint not null,
    cost_micros  bigint not null,
    constraint event_model_day_pkey primary key (bucket_start, team_id, gateway_id, model)
);

insert into event_verdict_hour select bucket_start, team_id, gateway_id, verdict, sum(requests), sum(input_tokens + output_tokens), sum(cost_micros)
from event_rollup_hour group by bucket_start, team_id, gateway_id, verdict;
insert into event_verdict_day select bucket_start, team_id, gateway_id, verdict, sum(requests), sum(input_tokens + output_tokens), sum(cost_micros)
from event_rollup_day group by bucket_start, team_id, gateway_id, verdict;
insert into event_model_hour select bucket_start, team_id, gateway_id, model, sum(requests), sum(input_tokens + output_tokens), sum(cost_micros)
from event_rollup_hour group by bucket_start, team_id, gateway_id, model;
insert into event_model_day select bucket_start, team_id, gateway_id, model, sum(requests), sum(input_tokens + output_tokens), sum(cost_micros)
from event_rollup_day group by bucket_start, team_id, gateway_id, model;
