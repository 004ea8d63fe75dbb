-- The price catalog: USD per million tokens by model (prefix match, so
-- `gpt-4o` also prices `gpt-4o-2024-08-06`), versioned by the time each
-- price took effect. Costs of events use the price in effect when they ran.
create table model_price (
    model_price_id            text primary key not null,
    model                     text not null,
    input_usd_per_mtok        real not null,
    output_usd_per_mtok       real not null,
    cached_input_usd_per_mtok real,
    source                    text not null,
    effective_at              bigint not null,
    created_at                bigint not null,
    constraint model_price_model_effective_key unique (model, effective_at)
);

-- Seed: public list prices (standard tier) as published by OpenAI and
-- Anthropic, in effect from 2025-06-01T00:00:00Z (1748736000000).
insert into model_price (model_price_id, model, input_usd_per_mtok, output_usd_per_mtok, cached_input_usd_per_mtok, source, effective_at, created_at) values
    ('seed-gpt-4o', 'gpt-4o', 2.50, 10.00, 1.25, 'OpenAI API pricing, list price', 1748736000000, 1748736000000),
    ('seed-gpt-4o-mini', 'gpt-4o-mini', 0.15, 0.60, 0.075, 'OpenAI API pricing, list price', 1748736000000, 1748736000000),
    ('seed-gpt-4.1', 'gpt-4.1', 2.00, 8.00, 0.50, 'OpenAI API pricing, list price', 1748736000000, 1748736000000),
    ('seed-gpt-4.1-mini', 'gpt-4.1-mini', 0.40, 1.60, 0.10, 'OpenAI API pricing, list price', 1748736000000, 1748736000000),
    ('seed-gpt-4.1-nano', 'gpt-4.1-nano', 0.10, 0.40, 0.025, 'OpenAI API pricing, list price', 1748736000000, 1748736000000),
    ('seed-o3', 'o3', 2.00, 8.00, 0.50, 'OpenAI API pricing, list price', 1748736000000, 1748736000000),
    ('seed-o4-mini', 'o4-mini', 1.10, 4.40, 0.275, 'OpenAI API pricing, list price', 1748736000000, 1748736000000),
    ('seed-claude-opus-4', 'claude-opus-4', 15.00, 75.00, 1.50, 'Anthropic API pricing, list price (cache reads)', 1748736000000, 1748736000000),
    ('seed-claude-sonnet-4', 'claude-sonnet-4', 3.00, 15.00, 0.30, 'Anthropic API pricing, list price (cache reads)', 1748736000000, 1748736000000),
    ('seed-claude-3-7-sonnet', 'claude-3-7-sonnet', 3.00, 15.00, 0.30, 'Anthropic API pricing, list price (cache reads)', 1748736000000, 1748736000000),
    ('seed-claude-3-5-haiku', 'claude-3-5-haiku', 0.80, 4.00, 0.08, 'Anthropic API pricing, list price (cache reads)', 1748736000000, 1748736000000),
    ('seed-demo', 'demo-', 0.15, 0.60, null, 'kt demo provider (priced like a small model)', 1748736000000, 1748736000000);

-- Events of models without a catalog price are charged at a large model's
-- price (never $0) and flagged.
alter table event add column unpriced boolean not null default false;
