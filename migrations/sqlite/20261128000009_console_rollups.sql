-- Rollups for the console, maintained in the same transaction as each event
-- batch (like event_rollup_hour), so pages never scan raw events:
--   * a latency histogram per hour, team and gateway (p50 / p95);
--   * the policies that fired per hour, team, gateway and verdict.
create table event_latency_hour (
    bucket_start bigint not null,
    team_id      text not null,
    gateway_id   text not null,
    -- upper bound of the histogram bucket, in ms (see store::events::LATENCY_BOUNDS_MS)
    le_ms        bigint not null,
    requests     bigint not null,
    constraint event_latency_hour_pkey primary key (bucket_start, team_id, gateway_id, le_ms)
);

create table event_policy_hour (
    bucket_start bigint not null,
    team_id      text not null,
    gateway_id   text not null,
    policy       text not null,
    verdict      text not null,
    requests     bigint not null,
    constraint event_policy_hour_pkey primary key (bucket_start, team_id, gateway_id, policy, verdict)
);

-- The monthly cost_limit (micro-USD) of the config a gateway runs, so the
-- console can show budget against actual spend.
alter table gateway add column cost_limit_micros bigint;

-- Events stored before this migration.
insert into event_policy_hour (bucket_start, team_id, gateway_id, policy, verdict, requests)
select created_at - (created_at % 3600000), coalesce(team_id, ''), gateway_id, policy, verdict, count(*)
from event where policy is not null and policy <> ''
group by created_at - (created_at % 3600000), coalesce(team_id, ''), gateway_id, policy, verdict;

insert into event_latency_hour (bucket_start, team_id, gateway_id, le_ms, requests)
select bucket_start, team_id, gateway_id, le_ms, count(*) from (
    select created_at - (created_at % 3600000) as bucket_start, coalesce(team_id, '') as team_id, gateway_id,
        case
            when latency_ms <= 1 then 1 when latency_ms <= 2 then 2 when latency_ms <= 5 then 5
            when latency_ms <= 10 then 10 when latency_ms <= 20 then 20 when latency_ms <= 50 then 50
            when latency_ms <= 100 then 100 when latency_ms <= 200 then 200 when latency_ms <= 300 then 300
            when latency_ms <= 500 then 500 when latency_ms <= 750 then 750 when latency_ms <= 1000 then 1000
            when latency_ms <= 1500 then 1500 when latency_ms <= 2000 then 2000 when latency_ms <= 3000 then 3000
            when latency_ms <= 5000 then 5000 when latency_ms <= 7500 then 7500 when latency_ms <= 10000 then 10000
            when latency_ms <= 20000 then 20000 when latency_ms <= 30000 then 30000 when latency_ms <= 60000 then 60000
            when latency_ms <= 120000 then 120000 else 300000
        end as le_ms
    from event
) e
group by bucket_start, team_id, gateway_id, le_ms;

-- Daily copies of the three rollups, for ranges of days (7d, 30d, this
-- month): a month of a large org is ~30 rows per series instead of ~720.
create table event_rollup_day (
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
    constraint event_rollup_day_pkey primary key (bucket_start, team_id, gateway_id, model, verdict)
);

create table event_latency_day (
    bucket_start bigint not null,
    team_id      text not null,
    gateway_id   text not null,
    le_ms        bigint not null,
    requests     bigint not null,
    constraint event_latency_day_pkey primary key (bucket_start, team_id, gateway_id, le_ms)
);

create table event_policy_day (
    bucket_start bigint not null,
    team_id      text not null,
    gateway_id   text not null,
    policy       text not null,
    verdict      text not null,
    requests     bigint not null,
    constraint event_policy_day_pkey primary key (bucket_start, team_id, gateway_id, policy, verdict)
);

insert into event_rollup_day (bucket_start, team_id, gateway_id, model, verdict, requests, input_tokens, output_tokens, cost_micros, latency_ms_sum)
select bucket_start - (bucket_start % 86400000), team_id, gateway_id, model, verdict,
    sum(requests), sum(input_tokens), sum(output_tokens), sum(cost_micros), sum(latency_ms_sum)
from event_rollup_hour
group by bucket_start - (bucket_start % 86400000), team_id, gateway_id, model, verdict;

insert into event_latency_day (bucket_start, team_id, gateway_id, le_ms, requests)
select bucket_start - (bucket_start % 86400000), team_id, gateway_id, le_ms, sum(requests)
from event_latency_hour
group by bucket_start - (bucket_start % 86400000), team_id, gateway_id, le_ms;

insert into event_policy_day (bucket_start, team_id, gateway_id, policy, verdict, requests)
select bucket_start - (bucket_start % 86400000), team_id, gateway_id, policy, verdict, sum(requests)
from event_policy_hour
group by bucket_start - (bucket_start % 86400000), team_id, gateway_id, policy, verdict;
