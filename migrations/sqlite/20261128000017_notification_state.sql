-- What the notifier last saw of each watched value (a gateway's health, a
-- team's budget level this month), so that each change is notified once,
-- by one `kt serve` replica, and survives restarts.
create table notification_state (
    key        text primary key not null,
    value      text not null,
    updated_at bigint not null
);
