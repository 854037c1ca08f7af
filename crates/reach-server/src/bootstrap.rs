//! First start: create tenant `default` and user `admin` (role `owner`: the provider, who also
//! manages tenants) exactly once.
//!
//! The latch is the single row of table `bootstrap`, inserted in the same transaction as the
//! tenant and the admin; its primary key makes a second bootstrap (another instance, a
//! restart, a racing request) fail. No HTTP route reaches this code.

use rand::Rng as _;

use crate::auth::permissions::Role;
use crate::db;
use crate::state::{AppState, StartError};
use crate::{tenants, users};

/// Name of the first admin.
pub const ADMIN_USERNAME: &str = "admin";
const PASSWORD_ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const PASSWORD_LEN: usize = 20;

/// What the first start did.
#[derive(Debug, Clone, Default)]
pub struct Bootstrap {
    /// Whether this start created the default tenant and admin.
    pub created: bool,
    /// The generated admin password (only when created and not supplied); print it once.
    pub generated_password: Option<crate::secrets::SecretString>,
}

/// Runs the bootstrap if the latch is not set.
///
/// # Errors
/// On database or hashing failure.
pub async fn run(state: &AppState) -> Result<Bootstrap, StartError> {
    let done: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bootstrap")
        .fetch_one(&state.db)
        .await?;
    if done > 0 {
        return Ok(Bootstrap::default());
    }
    let (password, generated) = match &state.config.admin_password {
        Some(given) => (given.expose().to_owned(), false),
        None => (random_password(), true),
    };
    let hash = state.passwords.hash(&password).await?;
    let mut tx = state.db.begin().await?;
    let latched = sqlx::query("INSERT INTO bootstrap (id, done_at) VALUES (1, $1)")
        .bind(db::now_ms())
        .execute(&mut *tx)
        .await;
    match latched {
        Err(err) if db::is_unique_violation(&err) => return Ok(Bootstrap::default()),
        other => other?,
    };
    let tenant = tenants::create(&mut *tx, tenants::DEFAULT_TENANT).await?;
    let admin = users::create(&mut *tx, &tenant.id, ADMIN_USERNAME, &hash, Role::Owner).await?;
    tx.commit().await?;
    state
        .audit(
            &tenant.id,
            "system",
            "bootstrap",
            serde_json::json!({"tenant": tenant.name, "admin_user_id": admin.id}),
        )
        .await?;
    tracing::info!(tenant = %tenant.name, user = ADMIN_USERNAME, "first start: created tenant and admin");
    Ok(Bootstrap {
        created: true,
        generated_password: generated.then(|| password.into()),
    })
}

fn random_password() -> String {
    let mut rng = rand::rng();
    (0..PASSWORD_LEN)
        .map(|_| char::from(PASSWORD_ALPHABET[rng.random_range(0..PASSWORD_ALPHABET.len())]))
        .collect()
}
