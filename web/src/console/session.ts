// Who is signed in: the `/api/me` answer, cached per page load.

export interface Me {
  user_id: string;
  username: string;
  role: string;
  tenant?: string;
  tenant_id?: string;
  permissions: string[];
}

export function can(me: Me | null, permission: string): boolean {
  return !!me && me.permissions.includes(permission);
}

/** Lists arrive either bare or wrapped (`{items: […]}`, `{users: […]}`…); take the array. */
export function listOf<T>(value: unknown): T[] {
  if (Array.isArray(value)) return value as T[];
  if (value && typeof value === "object") {
    for (const inner of Object.values(value)) if (Array.isArray(inner)) return inner as T[];
  }
  return [];
}
