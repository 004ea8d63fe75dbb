-- The secret a Git host signs push webhooks with (HMAC-SHA256), sealed
-- with AES-256-GCM-SIV under the master key. Shown once when the
-- repository is linked; repositories linked before have none (webhook off).
alter table git_repo add column webhook_secret_sealed text;
