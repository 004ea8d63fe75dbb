-- PII entity types a policy found in a request (comma-separated names such
-- as `email,phone`; never the values).
alter table event add column pii_entities text;
