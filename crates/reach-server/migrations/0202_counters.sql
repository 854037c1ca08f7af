-- Rate-limit, lockout and backoff counters shared by every server instance on the database
-- (issue 16), so N instances do not multiply an attacker's guesses. One row per counted
-- subject of a kind (e.g. kind `support_code`, subject a client IP). Every update is one
-- atomic INSERT … ON CONFLICT … DO UPDATE … RETURNING (see src/counters.rs); rows whose
-- `expires_at` passed are pruned.
-- Portable SQL: BIGINT counts and times in milliseconds since the Unix epoch, 0/1 flags.

CREATE TABLE rate_counters (
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    -- Attempts counted in the current window (or since the counter last started over).
    hits BIGINT NOT NULL,
    -- Attempts are refused until then (lockout, backoff); 0: not held.
    held_until BIGINT NOT NULL,
    -- The row is forgotten then: the window ended, or the subject was quiet that long.
    expires_at BIGINT NOT NULL,
    -- Whether the last counted attempt was admitted (1) or refused (0).
    admitted BIGINT NOT NULL,
    PRIMARY KEY (kind, subject)
);

CREATE INDEX rate_counters_by_expiry ON rate_counters (expires_at);
