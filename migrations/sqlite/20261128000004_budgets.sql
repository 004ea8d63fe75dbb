-- Hard budgets shared by every replica of every gateway of a team.
--
-- Wallets: credit allocated to a team. A team without a wallet row is not
-- wallet-limited; once allocated, allocated - spent is a hard cap. `spent`
-- grows in the same transaction that stores the team's events, for events
-- from `effective_at` on (when every gateway knows of the wallet).
create table wallet (
    team_id          text primary key not null references team (team_id),
    allocated_micros bigint not null default 0,
    spent_micros     bigint not null default 0,
    effective_at     bigint not null,
    created_at       bigint not null,
    updated_at       bigint not null
);

-- The wallet ledger, append-only: who allocated what, when and why.
create table wallet_transaction (
    wallet_transaction_id text primary key not null,
    team_id               text not null references team (team_id),
    kind                  text not null check (kind in ('allocate', 'adjust')),
    amount_micros         bigint not null,
    balance_after_micros  bigint not null,
    actor                 text not null,
    reason                text,
    created_at            bigint not null
);
create index wallet_transaction_team_idx on wallet_transaction (team_id, created_at desc);

-- One row per team serialises lease grants (its update takes the lock).
create table budget_lock (
    team_id text primary key not null,
    grants  bigint not null default 0
);

-- Budget leases: the part of a team's remaining budget a gateway process
-- (`holder`) may spend without asking the database. `amount` is what the
-- holder may still spend for `month_start` beyond the events already stored;
-- storing the holder's events lowers it in the same transaction. A lease
-- not renewed by `expires_at` no longer counts.
create table budget_lease (
    holder        text not null,
    team_id       text not null,
    month_start   bigint not null,
    amount_micros bigint not null,
    expires_at    bigint not null,
    constraint budget_lease_pkey primary key (holder, team_id, month_start)
);
create index budget_lease_team_idx on budget_lease (team_id, month_start);

-- Fleet-wide rate limits: requests (leased in slices) and tokens per team
-- per one-minute window (UTC minute start, ms).
create table rate_window (
    team_id      text not null,
    window_start bigint not null,
    requests     bigint not null default 0,
    tokens       bigint not null default 0,
    constraint rate_window_pkey primary key (team_id, window_start)
);
