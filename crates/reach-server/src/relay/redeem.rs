//! The one support-code redemption, used by `POST /api/support-codes/validate` (preview) and
//! by `/ws/agent` (consume).
//!
//! Brute force is bounded per client IP by [`crate::counters::SUPPORT_CODE_LOCKOUT`] (10 wrong
//! codes, 15 minutes out), shared by both surfaces and by every server instance on the
//! database. The attempt is reserved — counted as a failure in the shared counter — before the
//! code is looked up, and cleared when the code turns out good, so parallel guesses on any
//! instance cannot slip past the check while earlier ones are still being looked up: at most
//! 10 guesses per IP are evaluated per lockout, however many race and on however many
//! instances. The process's own [`crate::state::RateLimits::support_code_lockout`] is a fast
//! first gate in front of it (it refuses without a database round trip once this process saw
//! the IP's 10 tries). A database error refuses the attempt.

use std::net::IpAddr;
use std::time::Instant;

use reach_proto::support_code::SupportCode;
use serde_json::json;

use crate::counters::{self, Refused};
use crate::ratelimit::RetryAfter;
use crate::relay::store::credentials::{self, CodeRow};
use crate::state::AppState;

/// What redeeming does to a good code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redemption {
    /// Only look (the end user's preview): the code stays usable.
    Preview,
    /// Use it up atomically: exactly one caller gets it.
    Consume,
}

impl Redemption {
    const fn surface(self) -> &'static str {
        match self {
            Self::Preview => "validate",
            Self::Consume => "agent",
        }
    }
}

/// Why a code was not redeemed.
#[derive(Debug, thiserror::Error)]
pub enum RedeemError {
    /// Too many wrong codes from this IP; retry after this long.
    #[error("too many wrong codes; try again later")]
    LockedOut(RetryAfter),
    /// Malformed, unknown, expired or already used.
    #[error("unknown, expired or used support code")]
    Unknown,
    /// The database failed (the attempt stays counted).
    #[error("database error while redeeming a support code")]
    Database(#[from] sqlx::Error),
}

/// Redeems `typed` for client `ip`: reserves the attempt, looks the code up (previewing or
/// consuming it), then clears the reservation on success or audits a lockout it started.
///
/// # Errors
/// See [`RedeemError`].
pub async fn redeem(
    state: &AppState,
    ip: IpAddr,
    typed: &str,
    how: Redemption,
) -> Result<CodeRow, RedeemError> {
    let lockout = &state.limits.support_code_lockout;
    let _first_gate = lockout
        .reserve(ip, Instant::now())
        .map_err(RedeemError::LockedOut)?;
    let subject = counters::ip_subject(ip);
    let reservation = counters::reserve(
        &state.db,
        counters::KIND_SUPPORT_CODE,
        &subject,
        &counters::SUPPORT_CODE_LOCKOUT,
    )
    .await
    .map_err(|refused| match refused {
        Refused::Held(retry) => RedeemError::LockedOut(retry),
        Refused::Database(err) => RedeemError::Database(err),
    })?;
    let found = match SupportCode::parse(typed) {
        Ok(code) => {
            let hash = credentials::code_hash(&code);
            match how {
                Redemption::Preview => credentials::preview_code(&state.db, &hash).await?,
                Redemption::Consume => credentials::consume_code(&state.db, &hash).await?,
            }
        }
        Err(_) => None,
    };
    match found {
        Some(row) => {
            lockout.record_success(ip);
            // The code is good (and maybe consumed): a failed clear only leaves tries counted.
            if let Err(err) =
                counters::clear(&state.db, counters::KIND_SUPPORT_CODE, &subject).await
            {
                tracing::warn!(error = %err, "could not clear a support code lockout counter");
            }
            Ok(row)
        }
        None => {
            if reservation.started_hold {
                audit_lockout(state, ip, how.surface()).await;
            }
            Err(RedeemError::Unknown)
        }
    }
}

/// Audits a lockout in the default tenant (a wrong code names no tenant).
async fn audit_lockout(state: &AppState, ip: IpAddr, surface: &str) {
    let Ok(Some(tenant)) =
        crate::tenants::find_by_name(&state.db, crate::tenants::DEFAULT_TENANT).await
    else {
        return;
    };
    let details = json!({"ip": ip.to_string(), "surface": surface});
    if let Err(err) = state
        .audit(&tenant.id, "anonymous", "support_code_lockout", details)
        .await
    {
        tracing::warn!(error = %err, "could not audit a support code lockout");
    }
}
