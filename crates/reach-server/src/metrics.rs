//! Counters exported at `GET /metrics` in the Prometheus text format.
//!
//! Deliberately small: a mutex-protected map per labelled counter. Labels are route
//! templates (never raw paths, so ids do not explode the label set) and status codes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Label values of one counter sample.
type Labels = Vec<(&'static str, String)>;

/// A counter with labels.
#[derive(Debug)]
struct Counter {
    name: &'static str,
    help: &'static str,
    values: Mutex<BTreeMap<Labels, u64>>,
}

impl Counter {
    const fn new(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            help,
            values: Mutex::new(BTreeMap::new()),
        }
    }

    fn inc(&self, labels: Labels) {
        let mut values = self
            .values
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *values.entry(labels).or_insert(0) += 1;
    }

    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} counter", self.name);
        let values = self
            .values
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (labels, value) in values.iter() {
            let labels: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = writeln!(out, "{}{{{}}} {value}", self.name, labels.join(","));
        }
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    http_requests: Counter,
    logins: Counter,
    rate_limited: Counter,
    audit_events: Counter,
    usb_refused: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            http_requests: Counter::new(
                "reach_http_requests_total",
                "HTTP requests by method, route template and status.",
            ),
            logins: Counter::new("reach_logins_total", "Login attempts by outcome."),
            rate_limited: Counter::new(
                "reach_rate_limited_total",
                "Requests refused with 429, by limiter.",
            ),
            audit_events: Counter::new(
                "reach_audit_events_total",
                "Audit records appended, by event type.",
            ),
            usb_refused: Counter::new(
                "reach_usb_frames_refused_total",
                "USB frames from viewers the access rule refused, by reason.",
            ),
        }
    }
}

impl Metrics {
    /// Counts one HTTP response.
    pub fn http_request(&self, method: &str, route: &str, status: u16) {
        self.http_requests.inc(vec![
            ("method", method.to_owned()),
            ("route", route.to_owned()),
            ("status", status.to_string()),
        ]);
    }

    /// Counts a login attempt (`ok` or `failed`).
    pub fn login(&self, outcome: &'static str) {
        self.logins.inc(vec![("outcome", outcome.to_owned())]);
    }

    /// Counts a request refused by the named limiter.
    pub fn rate_limited(&self, limiter: &'static str) {
        self.rate_limited.inc(vec![("limiter", limiter.to_owned())]);
    }

    /// Counts a viewer's USB frame refused by the access rule.
    pub fn usb_refused(&self, reason: &'static str) {
        self.usb_refused.inc(vec![("reason", reason.to_owned())]);
    }

    /// Counts an appended audit record.
    pub fn audit_event(&self, event_type: &str) {
        self.audit_events
            .inc(vec![("event_type", event_type.to_owned())]);
    }

    /// Everything in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for counter in [
            &self.http_requests,
            &self.logins,
            &self.rate_limited,
            &self.audit_events,
            &self.usb_refused,
        ] {
            counter.render(&mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_with_labels_in_the_text_format() {
        let metrics = Metrics::default();
        metrics.http_request("GET", "/api/me", 200);
        metrics.http_request("GET", "/api/me", 200);
        metrics.rate_limited("login");
        let text = metrics.render();
        assert!(text.contains(
            "reach_http_requests_total{method=\"GET\",route=\"/api/me\",status=\"200\"} 2"
        ));
        assert!(text.contains("reach_rate_limited_total{limiter=\"login\"} 1"));
        assert!(text.contains("# TYPE reach_logins_total counter"));
    }
}
