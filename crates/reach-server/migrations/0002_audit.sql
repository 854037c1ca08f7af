-- Hash-chained audit log (one chain per tenant, `seq` runs 1, 2, 3… per tenant) and the
-- periodically recorded chain heads that make truncation detectable. Rows are only ever
-- inserted; the server has no UPDATE or DELETE statement for either table.

CREATE TABLE audit_log (
    tenant_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    ts_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    event_type TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

CREATE INDEX audit_log_by_type ON audit_log (tenant_id, event_type, seq);
CREATE INDEX audit_log_by_actor ON audit_log (tenant_id, actor, seq);

-- Newest recorded head per tenant, authenticated with a key derived from the server secret
-- (kept outside the database) so it cannot be rewritten with database access alone.
CREATE TABLE audit_heads (
    tenant_id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    mac TEXT NOT NULL
);
