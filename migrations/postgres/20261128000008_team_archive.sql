-- Archived teams keep their history but can no longer be used: their keys
-- and tokens stop working and they are hidden from lists by default.
alter table team add column archived_at bigint;
