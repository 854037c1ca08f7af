-- Which instance holds which machine's agent (issue 16), kept when instances share a NATS
-- bus. A row names the agent's connection; it is removed when that connection goes, and a
-- row of an instance that is no longer alive (server_instances.seen_at) counts for nothing.

CREATE TABLE agent_presence (
    machine_id TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL,
    conn_id BIGINT NOT NULL,
    since BIGINT NOT NULL
);
