// What a machine is called in the console. Attended machines (made by a support code) are
// stored as "Attended session (<technician>)": the console names them after the host name
// their agent reported instead, so a list of customers' computers is readable.

export interface Machine {
  id: number | string;
  name: string;
  organization?: string | null;
  site?: string | null;
  tags?: string[];
  online?: boolean;
  attended?: boolean;
  hostname?: string | null;
  last_seen_at_ms?: number | null;
  created_at_ms?: number | null;
  os?: string | null;
  agent_version?: string | null;
  capabilities?: { supports_usb?: boolean; screens?: unknown[] } | null;
}

/** The name to show: the given name for managed machines, the host name for attended ones. */
export function machineName(m: Pick<Machine, "name" | "attended" | "hostname">): string {
  if (m.attended) return m.hostname ? m.hostname : "Customer's computer";
  return m.name;
}

/** A second line: the host name when it differs from the name, and how the machine came. */
export function machineDetail(m: Pick<Machine, "name" | "attended" | "hostname">): string {
  if (m.attended) return "via a support code";
  return m.hostname && m.hostname !== m.name ? `host ${m.hostname}` : "";
}
