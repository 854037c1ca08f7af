//! Shared server state handed to every handler, and its construction on start.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::auth::password::Passwords;
use crate::auth::token::TokenSigner;
use crate::bootstrap::{self, Bootstrap};
use crate::config::Config;
use crate::db::{self, Db};
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::secrets::ServerSecret;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The database could not be opened.
    #[error("cannot open database: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The server secret could not be loaded.
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),
    /// Password hashing is misconfigured.
    #[error(transparent)]
    Hash(#[from] crate::auth::password::HashError),
    /// TLS files could not be loaded, or the socket could not be bound.
    #[error("cannot listen: {0}")]
    Listen(std::io::Error),
    /// The NATS bus could not be reached.
    #[error(transparent)]
    Bus(#[from] crate::bus::BusError),
}

/// Creates the data directory with mode 0700 (it holds the secret and password hashes);
/// an existing directory is left as it is.
fn create_private_dir(path: &std::path::Path) -> Result<(), StartError> {
    use std::os::unix::fs::DirBuilderExt as _;
    if path.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| StartError::DataDir {
            path: path.display().to_string(),
            source,
        })
}

/// Creates an empty file with mode 0600 if there is none: SQLite then creates its `-wal` and
/// `-shm` files with the same mode, so password hashes are not readable by other users.
fn create_private_file(path: &std::path::Path) -> Result<(), StartError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StartError::DataDir {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Events other parts of the server react to (e.g. WebSockets closing on revocation).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuthEvent {
    /// A token and every token it minted were revoked.
    TokenRevoked {
        /// The revoked token's id.
        jti: String,
    },
    /// All tokens of a user were revoked, except `keep_jti` and what it minted.
    UserTokensRevoked {
        /// Tenant id.
        tenant_id: String,
        /// User id.
        user_id: String,
        /// The token that stays valid (the one that changed the password).
        keep_jti: Option<String>,
    },
    /// A tenant was suspended: every socket of it closes.
    TenantSuspended {
        /// Tenant id.
        tenant_id: String,
    },
    /// A user's role or disabled flag changed, or the user was deleted.
    UserChanged {
        /// Tenant id.
        tenant_id: String,
        /// User id.
        user_id: String,
    },
}

/// Per-IP limiters, one per route class: this process's fast first gate. The decision is the
/// shared count in the database ([`crate::counters`]), so N instances allow no more than one.
#[derive(Debug)]
pub struct RateLimits {
    /// `POST /api/auth/login`: 8 per minute.
    pub login: RateLimiter,
    /// `POST /api/auth/change-password`: 5 per minute.
    pub change_password: RateLimiter,
    /// `POST /api/support-codes/validate`: 15 per minute.
    pub support_code_validate: RateLimiter,
    /// 10 consecutive wrong support codes (validate or agent socket): 15 minutes out (first
    /// gate; the shared counter decides).
    pub support_code_lockout: crate::ratelimit::Lockout,
    /// Per-account login backoff (account+IP pair) and account slowdown (first gate; the
    /// shared counters decide, the slowdown's spacing is per process).
    pub login_backoff: crate::login_backoff::LoginBackoff,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            login: RateLimiter::new(8, Duration::from_secs(60)),
            change_password: RateLimiter::new(5, Duration::from_secs(60)),
            support_code_validate: RateLimiter::new(15, Duration::from_secs(60)),
            support_code_lockout: crate::ratelimit::Lockout::new(10, Duration::from_secs(15 * 60)),
            login_backoff: crate::login_backoff::LoginBackoff::default(),
        }
    }
}

/// Everything handlers share. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// The configuration in effect.
    pub config: Arc<Config>,
    /// Signs and checks tokens.
    pub tokens: Arc<TokenSigner>,
    /// Keys of the audit chain and of its recorded heads.
    pub audit_keys: Arc<crate::audit::AuditKeys>,
    /// Password hashing.
    pub passwords: Arc<Passwords>,
    /// Per-IP rate limiters.
    pub limits: Arc<RateLimits>,
    /// Prometheus counters.
    pub metrics: Arc<Metrics>,
    /// Revocations and user changes, for long-lived connections.
    pub events: broadcast::Sender<AuthEvent>,
    /// Live agents, sessions and viewers (the relay's join chokepoint).
    pub relay: Arc<crate::relay::Hub>,
    /// Console events (machines, sessions, consent, codes), delivered per tenant.
    pub console: broadcast::Sender<crate::console_events::ConsoleEvent>,
    /// Open connections and unauthenticated sockets, per client IP.
    pub connections: Arc<crate::conn::Connections>,
    /// Claims `reach usb attach` holds in technicians' kernels now, per session.
    pub usb_attached: Arc<crate::usb_attached::UsbAttached>,
    /// Set when the server started stopping: `/readyz` answers 503 so a load balancer sends
    /// nobody new here.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// This run's id among the instances sharing the database ([`crate::instances`]).
    pub instance_id: Arc<str>,
    /// The bus shared with the other instances (`--nats-url`), if any ([`crate::bus`]).
    pub bus: Option<Arc<crate::bus::Bus>>,
}

impl AppState {
    /// Opens the data directory and database, runs migrations, loads the secret and
    /// bootstraps the first tenant and admin if this is the first start.
    ///
    /// # Errors
    /// See [`StartError`].
    pub async fn open(config: Config) -> Result<(Self, Bootstrap), StartError> {
        create_private_dir(&config.data_dir)?;
        if config.database_url.is_none() {
            create_private_file(&config.sqlite_path())?;
        }
        let db = db::connect(&config.database_url()).await?;
        db::migrate(&db).await?;
        // Sessions of instances that are gone (a previous run of this one included) end now, so
        // none stays half-open; those of live instances sharing the database are left alone.
        let instance_id: Arc<str> = db::new_id("ins").into();
        crate::instances::register(&db, &instance_id).await?;
        let ended =
            crate::instances::end_orphaned_sessions(&db, &instance_id, "server_restart").await?;
        if ended > 0 {
            tracing::info!(
                ended,
                "ended sessions left open by an instance that is gone"
            );
        }
        let secret = ServerSecret::load(
            &config.data_dir,
            config.token_secret.as_ref().map(|s| s.expose()),
        )?;
        let passwords = Passwords::new(config.password_hash_cost)?;
        let bus = match &config.nats_url {
            Some(url) => Some(Arc::new(
                crate::bus::Bus::connect(url, Arc::clone(&instance_id)).await?,
            )),
            None => None,
        };
        let (events, _) = broadcast::channel(256);
        let state = Self {
            db,
            tokens: Arc::new(TokenSigner::new(secret.derive("reach token signing v1"))),
            audit_keys: Arc::new(crate::audit::AuditKeys {
                chain: secret.derive("reach audit chain v1"),
                head: secret.derive("reach audit head v1"),
            }),
            passwords: Arc::new(passwords),
            limits: Arc::new(RateLimits::default()),
            metrics: Arc::new(Metrics::default()),
            config: Arc::new(config),
            events,
            relay: Arc::default(),
            console: crate::console_events::bus(),
            connections: Arc::default(),
            usb_attached: Arc::default(),
            draining: Arc::default(),
            instance_id,
            bus,
        };
        if let Some(bus) = &state.bus {
            crate::bus::listen(&state, bus).await.map_err(|e| {
                StartError::Bus(crate::bus::BusError::new(
                    state.config.nats_url.as_deref().unwrap_or_default(),
                    &e.to_string(),
                ))
            })?;
            bus.set_live(crate::cluster::live_instances(&state).await?);
        }
        let report = bootstrap::run(&state).await?;
        Ok((state, report))
    }

    /// Broadcasts an event; nobody listening is fine.
    /// With a bus, every other instance hears it too.
    pub fn publish(&self, event: AuthEvent) {
        if let Some(bus) = &self.bus {
            bus.broadcast(crate::bus::Broadcast::Auth {
                event: event.clone(),
            });
        }
        let _ = self.events.send(event);
    }

    /// Tells the tenant's consoles; nobody listening is fine.
    /// With a bus, their consoles on every other instance too.
    pub fn notify(&self, event: crate::console_events::ConsoleEvent) {
        if let Some(bus) = &self.bus {
            bus.broadcast(crate::bus::Broadcast::Console {
                tenant_id: event.tenant_id.clone(),
                event: event.clone(),
            });
        }
        let _ = self.console.send(event);
    }

    /// Appends an audit record and counts it; see [`crate::audit::record`].
    ///
    /// # Errors
    /// When the record cannot be written (the action should then fail too).
    pub async fn audit(
        &self,
        tenant_id: &str,
        actor: &str,
        event_type: &str,
        details: serde_json::Value,
    ) -> Result<i64, sqlx::Error> {
        let key = &self.audit_keys.chain;
        let seq =
            crate::audit::record(&self.db, key, tenant_id, actor, event_type, details).await?;
        self.metrics.audit_event(event_type);
        Ok(seq)
    }
}
