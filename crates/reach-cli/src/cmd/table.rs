//! Tables and key/value lines for people, from the server's JSON answers.

use reach_client::ops::Op;
use serde_json::Value;

/// Columns shown for each list, in order.
fn columns(op: &Op) -> &'static [&'static str] {
    match op {
        Op::MachinesList { .. } => &["id", "name", "organization", "site", "hostname", "online"],
        Op::AgentKeyList { .. } => &[
            "id",
            "prefix",
            "created_by",
            "created_at_ms",
            "last_used_at_ms",
            "revoked_at_ms",
        ],
        Op::SupportCodeList => &["id", "technician", "access", "usb", "expires_at_ms"],
        Op::SessionList { .. } => &[
            "id",
            "machine_id",
            "technician",
            "access",
            "usb",
            "consent",
            "created_at_ms",
            "ended_at_ms",
        ],
        Op::UsersList => &["id", "username", "role", "disabled"],
        Op::AuditList { .. } => &["id", "ts_ms", "actor", "event_type"],
        _ => &[],
    }
}

/// The answer as a table (lists), `key: value` lines (one object) or `done` (no content).
pub(crate) fn render(op: &Op, answer: &Value) -> String {
    let rows = answer
        .as_array()
        .or_else(|| answer.get("items").and_then(Value::as_array));
    match (rows, answer) {
        (Some(rows), _) => table(columns(op), rows),
        (None, Value::Object(map)) => {
            let mut out = String::new();
            for (key, value) in map {
                let shown = match value {
                    Value::Object(_) | Value::Array(_) => value.to_string(),
                    other => cell(key, other),
                };
                out.push_str(&format!("{key}: {shown}\n"));
            }
            out
        }
        (None, Value::Null) => "done\n".to_owned(),
        (None, other) => format!("{other}\n"),
    }
}

fn table(columns: &[&str], rows: &[Value]) -> String {
    if rows.is_empty() {
        return "(none)\n".to_owned();
    }
    let header: Vec<String> = columns
        .iter()
        .map(|c| c.trim_end_matches("_ms").to_owned())
        .collect();
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|row| columns.iter().map(|c| cell(c, &row[*c])).collect())
        .collect();
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| {
            body.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in std::iter::once(&header).chain(body.iter()) {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// One value for people: `-` for nothing, times (`…_ms`) as UTC dates.
fn cell(column: &str, value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(s) if s.is_empty() => "-".to_owned(),
        Value::String(s) => s.clone(),
        Value::Number(n) if column.ends_with("_ms") => {
            n.as_i64().map_or_else(|| n.to_string(), utc)
        }
        Value::Array(items) => items
            .iter()
            .map(|v| cell("", v))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// Milliseconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS` UTC.
fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days to a civil date (proleptic Gregorian), after H. Hinnant's public-domain algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_list_is_a_table_with_readable_times_and_dashes_for_nothing() {
        let rows = json!([
            {"id": "u1", "username": "alice", "role": "admin", "disabled": false, "created_at_ms": 0},
            {"id": "u2", "username": "bob", "role": "viewer", "disabled": true}
        ]);
        let text = render(&Op::UsersList, &rows);
        assert_eq!(
            text,
            "id  username  role    disabled\nu1  alice     admin   false\nu2  bob       viewer  true\n"
        );
        let sessions =
            json!([{"id": "s", "created_at_ms": 1_764_547_200_000_i64, "ended_at_ms": null}]);
        let text = render(
            &Op::SessionList {
                include_ended: true,
            },
            &sessions,
        );
        assert!(text.contains("2025-12-01 00:00:00"), "{text}");
        assert!(
            text.lines().nth(1).is_some_and(|l| l.contains(" -")),
            "{text}"
        );
    }

    #[test]
    fn one_object_is_key_value_lines_and_no_content_is_done() {
        let text = render(&Op::AuditVerify, &json!({"ok": true, "records": 12}));
        assert_eq!(text, "ok: true\nrecords: 12\n");
        assert_eq!(
            render(&Op::SessionEnd { id: "s".into() }, &Value::Null),
            "done\n"
        );
        assert_eq!(render(&Op::UsersList, &json!([])), "(none)\n");
    }
}
