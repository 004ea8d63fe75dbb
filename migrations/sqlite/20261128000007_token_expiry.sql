-- Tokens may expire; the last time each was used is kept (gateways report
-- their keys' use in batches, the API at most once a minute per token).
alter table api_token add column expires_at bigint;
alter table api_token add column last_used_at bigint;
