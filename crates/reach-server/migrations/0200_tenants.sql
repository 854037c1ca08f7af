-- Tenants a provider manages (issue 16): suspension, and the provider-level `owner` role with
-- permission `manage_tenants` (everything an admin has, plus the tenants API).

ALTER TABLE tenants ADD COLUMN suspended_at BIGINT;

INSERT INTO roles (name) VALUES ('owner');

INSERT INTO role_permissions (role, permission) VALUES
    ('owner', 'view'), ('owner', 'control'), ('owner', 'usb'), ('owner', 'support_codes'),
    ('owner', 'manage_machines'), ('owner', 'manage_users'), ('owner', 'audit'),
    ('owner', 'manage_tenants');

-- An existing installation: the bootstrap's admin (the oldest admin of tenant `default`)
-- becomes the provider's owner. A new one gets its owner from the bootstrap.
UPDATE users SET role = 'owner'
WHERE id = (
    SELECT u.id FROM users u JOIN tenants t ON t.id = u.tenant_id
    WHERE t.name = 'default' AND u.role = 'admin'
    ORDER BY u.created_at, u.id LIMIT 1
);
