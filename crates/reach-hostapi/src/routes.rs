//! The endpoints. Every handler calls `reach_usb::ops::HostOp::run` or `reach_usb::tools`;
//! nothing here re-implements USB logic. Changes are serialised and audited (`api_change`).

// `#[utoipa::path(params(...))]` expands to a path the lint calls over-qualified.
#![allow(unused_qualifications)]

use std::convert::Infallible;

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::{Json, extract::rejection::JsonRejection};
use futures_util::{Stream, StreamExt};
use reach_usb::acl::{AclRule, Verdict};
use reach_usb::ops::HostOp;
use reach_usb::proto::DeviceFilter;
use reach_usb::tools;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::HttpError;
use crate::server::AppState;

type Answer = Result<Json<Value>, HttpError>;

/// All routes (authenticated by the caller's layer).
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(devices))
        .routes(routes!(passthrough_status, passthrough_set))
        .routes(routes!(acl_list))
        .routes(routes!(acl_add))
        .routes(routes!(acl_remove))
        .routes(routes!(acl_default))
        .routes(routes!(loopback_devices))
        .routes(routes!(loopback_open))
        .routes(routes!(audit_verify))
        .routes(routes!(events))
}

/// A JSON body whose every rejection (malformed, unknown field, too large, wrong type) is a
/// JSON error with the rejection's 4xx status.
pub(crate) struct Body<T>(T);

impl<S, T> FromRequest<S> for Body<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &S) -> Result<Self, HttpError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(HttpError::new(rejection.status(), rejection.body_text())),
        }
    }
}

/// Maps an op's sentence to a status.
fn op_error(message: String) -> HttpError {
    let status = if message.starts_with("no rule at index") {
        StatusCode::NOT_FOUND
    } else if message.contains("integrity check") {
        StatusCode::CONFLICT
    } else {
        StatusCode::BAD_REQUEST
    };
    HttpError::new(status, message)
}

/// Runs a read-only op.
async fn read(state: &AppState, op: HostOp) -> Answer {
    op.run(&state.paths).await.map(Json).map_err(op_error)
}

/// Runs a changing op under the change lock and appends an `api_change` record.
async fn change(state: &AppState, op: HostOp) -> Answer {
    let _serialised = state.changes.lock().await;
    let answer = op.run(&state.paths).await.map_err(op_error)?;
    state.audit_change(&op).map_err(|e| {
        HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{} was done but could not be audited: {e}", op.name()),
        )
    })?;
    Ok(Json(answer))
}

/// Local devices with the ACL's verdict (`allow`, `prompt`, `deny`).
#[utoipa::path(get, path = "/usb/devices", tag = "usb", security(("bearer" = [])),
    responses((status = 200, description = "Devices with ACL verdicts", body = Object),
        (status = 401, description = "Missing or wrong token")))]
async fn devices(State(state): State<AppState>) -> Answer {
    let report = tools::list_local(&state.paths, state.backend.as_ref())
        .await
        .map_err(|e| HttpError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    Ok(Json(json!(report)))
}

/// The passthrough switch and the ACL's integrity.
#[utoipa::path(get, path = "/usb/passthrough", tag = "usb", security(("bearer" = [])),
    responses((status = 200, description = "Switch", body = Object)))]
async fn passthrough_status(State(state): State<AppState>) -> Answer {
    read(&state, HostOp::UsbPassthroughStatus).await
}

/// Body of `POST /usb/passthrough`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetPassthrough {
    /// On or off.
    enabled: bool,
}

/// Turns passthrough on or off (a running agent follows it and closes open claims when off).
#[utoipa::path(post, path = "/usb/passthrough", tag = "usb", security(("bearer" = [])),
    request_body = SetPassthrough,
    responses((status = 200, description = "The new state", body = Object),
        (status = 400, description = "Bad body")))]
async fn passthrough_set(
    State(state): State<AppState>,
    Body(body): Body<SetPassthrough>,
) -> Answer {
    let op = if body.enabled {
        HostOp::UsbPassthroughEnable
    } else {
        HostOp::UsbPassthroughDisable
    };
    change(&state, op).await
}

/// The ACL: rules (numbered from 0), default, integrity, whether signed.
#[utoipa::path(get, path = "/usb/acl", tag = "usb", security(("bearer" = [])),
    responses((status = 200, description = "The ACL", body = Object)))]
async fn acl_list(State(state): State<AppState>) -> Answer {
    read(&state, HostOp::UsbAclList).await
}

/// Body of `POST /usb/acl/rules`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddRule {
    /// `{"vendor_id": "0525", "product_id": "a4a0", "serial": null, "allow": true, "prompt_on_open": false, "label": "…"}`.
    #[schema(value_type = Object)]
    rule: AclRule,
    /// Insert before the other rules.
    #[serde(default)]
    first: bool,
}

/// Adds a rule; the ACL is saved signed.
#[utoipa::path(post, path = "/usb/acl/rules", tag = "usb", security(("bearer" = [])),
    request_body = AddRule,
    responses((status = 200, description = "The ACL after the change", body = Object),
        (status = 400, description = "Bad body"), (status = 409, description = "The ACL failed its integrity check")))]
async fn acl_add(State(state): State<AppState>, Body(body): Body<AddRule>) -> Answer {
    change(
        &state,
        HostOp::UsbAclAdd {
            rule: body.rule,
            first: body.first,
        },
    )
    .await
}

/// Removes the rule at `index`.
#[utoipa::path(delete, path = "/usb/acl/rules/{index}", tag = "usb", security(("bearer" = [])),
    params(("index" = usize, Path, description = "Rule index as `GET /usb/acl` numbers them")),
    responses((status = 200, description = "The ACL after the change", body = Object),
        (status = 404, description = "No such rule")))]
async fn acl_remove(State(state): State<AppState>, Path(index): Path<String>) -> Answer {
    let index = index
        .parse()
        .map_err(|_| HttpError::bad_request(format!("{index:?} is not a rule index")))?;
    change(&state, HostOp::UsbAclRemove { index }).await
}

/// Body of `PUT /usb/acl/default`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetDefault {
    /// `allow` or `deny`.
    #[schema(value_type = String)]
    verdict: Verdict,
}

/// Sets the verdict for devices no rule matches.
#[utoipa::path(put, path = "/usb/acl/default", tag = "usb", security(("bearer" = [])),
    request_body = SetDefault,
    responses((status = 200, description = "The ACL after the change", body = Object)))]
async fn acl_default(State(state): State<AppState>, Body(body): Body<SetDefault>) -> Answer {
    change(
        &state,
        HostOp::UsbAclSetDefault {
            verdict: body.verdict,
        },
    )
    .await
}

/// What a remote viewer would see: devices listed through this host's own session.
#[utoipa::path(get, path = "/usb/loopback/devices", tag = "usb", security(("bearer" = [])),
    responses((status = 200, description = "`{\"devices\": [...]}`", body = Object),
        (status = 409, description = "Passthrough is off or the host refused")))]
async fn loopback_devices(State(state): State<AppState>) -> Answer {
    let devices = tools::loopback_list_in(&state.paths, state.backend.clone(), state.audit())
        .await
        .map_err(|e| HttpError::new(StatusCode::CONFLICT, e.to_string()))?;
    Ok(Json(json!({ "devices": devices })))
}

/// Body of `POST /usb/loopback/open`: which device (empty fields match anything).
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct OpenDevice {
    /// idVendor, hex.
    vendor_id: Option<String>,
    /// idProduct, hex.
    product_id: Option<String>,
    /// Serial.
    serial: Option<String>,
    /// Bus id.
    bus_id: Option<String>,
}

/// Claims a device through this host's own session, reads its device descriptor and releases
/// it. `prompt_on_open` rules are answered "deny" (nobody to ask). Audited as a claim.
#[utoipa::path(post, path = "/usb/loopback/open", tag = "usb", security(("bearer" = [])),
    request_body = OpenDevice,
    responses((status = 200, description = "Claim id, device, descriptor", body = Object),
        (status = 409, description = "Denied, no such device, or passthrough off")))]
async fn loopback_open(State(state): State<AppState>, Body(body): Body<OpenDevice>) -> Answer {
    let fields = [
        ("vendor_id", body.vendor_id),
        ("product_id", body.product_id),
        ("serial", body.serial),
        ("bus_id", body.bus_id),
    ];
    let map: serde_json::Map<String, Value> = fields
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), Value::String(v))))
        .collect();
    let filter: DeviceFilter = serde_json::from_value(Value::Object(map))
        .map_err(|e| HttpError::bad_request(format!("not a device filter: {e}")))?;
    let report = tools::loopback_open_in(
        &state.paths,
        state.backend.clone(),
        filter,
        false,
        state.audit(),
    )
    .await
    .map_err(|e| HttpError::new(StatusCode::CONFLICT, e.to_string()))?;
    Ok(Json(json!(report)))
}

/// Verifies the host's local audit chain.
#[utoipa::path(get, path = "/usb/audit/verify", tag = "usb", security(("bearer" = [])),
    responses((status = 200, description = "`{ok, records, broken_at_id}`", body = Object)))]
async fn audit_verify(State(state): State<AppState>) -> Answer {
    let report = tools::audit_verify(&state.paths.audit())
        .map_err(|e| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(json!(report)))
}

/// Hotplug and claim events as Server-Sent Events (`device_added`, `device_removed`,
/// `claimed`, `released`, `passthrough`), each with an increasing id; `Last-Event-ID` resumes
/// from the last 1024 events.
#[utoipa::path(get, path = "/usb/events", tag = "usb", security(("bearer" = [])),
    params(("Last-Event-ID" = Option<u64>, Header, description = "Resume after this id")),
    responses((status = 200, description = "text/event-stream", content_type = "text/event-stream")))]
async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let sub = state.hub.subscribe(last);
    let live = futures_util::stream::unfold(sub.live, |mut rx| async move {
        match rx.recv().await {
            Ok(event) => Some((event, rx)),
            // A subscriber too slow to keep up reconnects with Last-Event-ID.
            Err(RecvError::Lagged(_) | RecvError::Closed) => None,
        }
    });
    let events = futures_util::stream::iter(sub.backlog)
        .chain(live)
        .map(|e| {
            Ok(SseEvent::default()
                .id(e.id.to_string())
                .event(e.kind)
                .data(e.data.to_string()))
        });
    let ready = futures_util::stream::once(async { Ok(SseEvent::default().comment("ready")) });
    Sse::new(ready.chain(events)).keep_alive(KeepAlive::default())
}
