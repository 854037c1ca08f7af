-- Machines, agent keys, support codes and sessions (issue 5).
-- Portable SQL: TEXT ids, BIGINT ms times, BIGINT 0/1 flags; tags and capabilities are JSON text.

CREATE TABLE machines (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    organization TEXT NOT NULL DEFAULT '',
    site TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '[]',
    os TEXT NOT NULL DEFAULT '',
    agent_version TEXT NOT NULL DEFAULT '',
    hostname TEXT NOT NULL DEFAULT '',
    capabilities TEXT NOT NULL DEFAULT '{}',
    require_consent BIGINT NOT NULL DEFAULT 0,
    attended BIGINT NOT NULL DEFAULT 0,
    last_seen_at BIGINT,
    created_at BIGINT NOT NULL
);

CREATE INDEX machines_by_tenant ON machines (tenant_id, name);

-- Only the SHA-256 of a key is stored; the key itself is shown once.
CREATE TABLE agent_keys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    machine_id TEXT NOT NULL REFERENCES machines (id),
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);

CREATE INDEX agent_keys_by_machine ON agent_keys (tenant_id, machine_id);

-- Support codes are stored as SHA-256 too; consumption is a conditional UPDATE.
CREATE TABLE support_codes (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    code_hash TEXT NOT NULL UNIQUE,
    created_by TEXT NOT NULL,
    technician TEXT NOT NULL,
    access TEXT NOT NULL,
    usb BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT,
    session_id TEXT
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    machine_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_by TEXT NOT NULL,
    technician TEXT NOT NULL,
    access TEXT NOT NULL,
    usb BIGINT NOT NULL DEFAULT 0,
    consent TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    ended_at BIGINT,
    end_reason TEXT
);

CREATE INDEX sessions_by_tenant ON sessions (tenant_id, ended_at);
