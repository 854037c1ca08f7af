-- Server instances sharing one database (issue 16): each start registers an instance that
-- records it is alive; a session belongs to the instance that opened it, so a starting
-- instance ends only the sessions of instances that are gone, never live ones.

CREATE TABLE server_instances (
    id TEXT PRIMARY KEY,
    started_at BIGINT NOT NULL,
    seen_at BIGINT NOT NULL
);

ALTER TABLE sessions ADD COLUMN instance_id TEXT;
