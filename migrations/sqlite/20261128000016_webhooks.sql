-- Notifications (SPEC §10): webhooks and their deliveries. A change that
-- notifies writes its deliveries in the same transaction as the change (an
-- outbox), and `kt serve` sends them, signed, retrying with back-off.
create table webhook (
    webhook_id    text primary key not null,
    url           text not null,
    -- JSON list of event names
    events        text not null,
    -- the HMAC key, sealed with the master key
    secret_sealed text not null,
    created_by    text not null,
    created_at    bigint not null
);

create table webhook_delivery (
    delivery_id      text primary key not null,
    webhook_id       text not null,
    event            text not null,
    payload          text not null,
    -- pending | delivered | failed
    status           text not null,
    attempts         bigint not null,
    next_attempt_at  bigint not null,
    last_status_code bigint,
    last_error       text,
    created_at       bigint not null,
    delivered_at     bigint
);
create index webhook_delivery_due on webhook_delivery (status, next_attempt_at);
create index webhook_delivery_hook on webhook_delivery (webhook_id, created_at);
