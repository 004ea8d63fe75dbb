-- The audit log: every change made through the API or the console (who,
-- what, when, before and after; secret values never appear). Append-only:
-- rows cannot be updated or deleted.
create table audit_log (
    audit_id    text primary key not null,
    created_at  bigint not null,
    actor       text not null,
    team_id     text,
    action      text not null,
    target_type text not null,
    target_id   text not null,
    before_json text,
    after_json  text
);
create index audit_log_created_at_idx on audit_log (created_at desc);
create index audit_log_team_created_at_idx on audit_log (team_id, created_at desc);

create trigger audit_log_no_update before update on audit_log
begin select raise(abort, 'the audit log is append-only'); end;
create trigger audit_log_no_delete before delete on audit_log
begin select raise(abort, 'the audit log is append-only'); end;
