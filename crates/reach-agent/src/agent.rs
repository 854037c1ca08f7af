//! The agent's connection loop: connect, authenticate, answer consent, relay, reconnect.

use crate::ClientError;
use crate::config::{AgentConfig, Credential};
use crate::consent::{ConsentAnswer, ConsentQuestion};
use crate::usb::service::{UsbService, ViewerKey};
use crate::ws::{self, Incoming, Ws};
use reach_proto::access::{
    AccessInputs, CallerRights, Consent, Scope, ViewerAccess, ViewerGrant, decide_viewer_grant,
};
use reach_proto::limits::{AGENT_MAX_MESSAGE, CONSENT_TIMEOUT};
use reach_proto::policy::{ViewerVerdict, judge_viewer_message};
use reach_proto::v1::{self, Envelope, envelope::Body};
use reach_proto::{close, codec};
use std::collections::HashMap;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// USB frames written to the socket per flush, at most.
const USB_BATCH: usize = 64;

/// What happened, for whoever embeds the agent (the CLI logs it; media code and tests
/// react to it).
#[derive(Debug, Clone)]
pub enum AgentEvent {
    /// Authenticated. `session_id` is set in attended mode.
    Connected {
        /// Machine the server bound this agent to.
        machine_id: String,
        /// Session created by the support code (attended mode).
        session_id: String,
    },
    /// A consent prompt was answered (or timed out: `granted == false`).
    ConsentAnswered {
        /// Session asked about.
        session_id: String,
        /// Only an explicit yes is `true`.
        granted: bool,
    },
    /// A message the core does not handle itself (input, stream control, USB, events).
    Message(Envelope),
    /// The connection ended; the agent reconnects unless it stops.
    Disconnected {
        /// Why.
        reason: String,
    },
}

/// A running agent.
#[derive(Debug)]
pub struct AgentHandle {
    /// Events in order. Keep reading them: the agent waits when this is full.
    pub events: mpsc::Receiver<AgentEvent>,
    outbound: mpsc::Sender<Envelope>,
    task: JoinHandle<Result<(), ClientError>>,
}

impl AgentHandle {
    /// Sends an envelope to the server (video, cursor, USB replies…).
    ///
    /// # Errors
    /// [`ClientError::Closed`] when the agent has stopped.
    pub async fn send(&self, envelope: Envelope) -> Result<(), ClientError> {
        self.outbound
            .send(envelope)
            .await
            .map_err(|_| ClientError::Closed {
                code: close::GOING_AWAY,
                reason: "agent stopped".into(),
            })
    }

    /// Waits for the agent to stop on its own (credential refused, attended session over)
    /// and returns why.
    ///
    /// # Errors
    /// The error that stopped the agent.
    pub async fn join(self) -> Result<(), ClientError> {
        let Self {
            task,
            outbound,
            events,
        } = self;
        drop(events);
        let result = task.await;
        drop(outbound);
        result.unwrap_or_else(|e| Err(ClientError::Protocol(format!("agent task failed: {e}"))))
    }

    /// Stops the agent (closing its connection normally) and waits for it.
    ///
    /// # Errors
    /// The error that stopped the agent, if it stopped on its own first.
    pub async fn stop(self) -> Result<(), ClientError> {
        let Self {
            task,
            outbound,
            events,
        } = self;
        drop(outbound);
        drop(events);
        task.await
            .unwrap_or_else(|e| Err(ClientError::Protocol(format!("agent task failed: {e}"))))
    }

    /// Stops the agent now.
    pub fn abort(&self) {
        self.task.abort();
    }
}

/// Starts an agent on the current runtime.
pub fn spawn(config: AgentConfig) -> AgentHandle {
    let (events_tx, events) = mpsc::channel(4096);
    let (outbound, outbound_rx) = mpsc::channel(256);
    let task = tokio::spawn(run(config, events_tx, outbound_rx));
    AgentHandle {
        events,
        outbound,
        task,
    }
}

/// Runs until the credential is refused, an attended session ends, or `outbound` closes.
///
/// # Errors
/// [`ClientError::Rejected`] when the server refuses the key or code.
pub async fn run(
    mut config: AgentConfig,
    events: mpsc::Sender<AgentEvent>,
    mut outbound: mpsc::Receiver<Envelope>,
) -> Result<(), ClientError> {
    let url = ws::socket_url(&config.server, "/ws/agent")?;
    let attended = matches!(config.credential, Credential::Code(_));
    let mut usb = config.usb.clone().map(UsbService::new);
    // Probed once: whether devices can be listed here (a machine without a USB bus cannot).
    // Without USB options the hello says what the embedder put there.
    if let Some(service) = &usb {
        let supported = service.supported().await;
        let caps = config
            .hello
            .capabilities
            .get_or_insert_with(Default::default);
        caps.supports_usb = supported;
    }
    loop {
        if let (Some(usb), Some(caps)) = (&usb, config.hello.capabilities.as_mut()) {
            caps.usb_enabled = usb.enabled();
        }
        match connect_and_auth(&url, &config).await {
            Ok((socket, ok)) => {
                config.backoff.reset();
                let _ = events
                    .send(AgentEvent::Connected {
                        machine_id: ok.machine_id,
                        session_id: ok.session_id,
                    })
                    .await;
                let end = serve(socket, &config, &events, &mut outbound, &mut usb).await;
                if let Some(usb) = usb.as_mut() {
                    usb.release_all();
                }
                let reason = match &end {
                    Ok(()) => "stopped".to_owned(),
                    Err(e) => e.to_string(),
                };
                tracing::info!(%reason, "disconnected from the server");
                let _ = events.send(AgentEvent::Disconnected { reason }).await;
                match end {
                    Ok(()) => return Ok(()),
                    Err(e) if e.is_fatal() || attended => return Err(e),
                    Err(_) => {}
                }
            }
            Err(e) if e.is_fatal() => return Err(e),
            Err(e) => tracing::warn!(error = %e, "could not connect; retrying"),
        }
        let delay = config.backoff.next_delay(rand::random::<f64>());
        tracing::info!(?delay, "reconnecting after a delay");
        tokio::time::sleep(delay).await;
    }
}

async fn connect_and_auth(
    url: &str,
    config: &AgentConfig,
) -> Result<(Ws, v1::AuthOk), ClientError> {
    let mut socket = ws::connect(url, AGENT_MAX_MESSAGE).await?;
    let credential = match &config.credential {
        Credential::Key(k) => v1::agent_auth::Credential::AgentKey(k.expose().to_owned()),
        Credential::Code(c) => v1::agent_auth::Credential::SupportCode(c.as_string()),
    };
    let auth = Body::AgentAuth(v1::AgentAuth {
        credential: Some(credential),
    });
    ws::send(&mut socket, &codec::envelope("", auth)).await?;
    let hello = Body::AgentHello(config.hello.clone());
    ws::send(&mut socket, &codec::envelope("", hello)).await?;
    let ok = ws::recv_auth_ok(&mut socket).await?;
    Ok((socket, ok))
}

/// Serves one authenticated connection. `Ok(())` means the embedder stopped the agent.
///
/// Outgoing USB frames are sent before incoming messages are read and before anything the
/// embedder queued (video), so USB never waits behind a screen update.
async fn serve(
    mut socket: Ws,
    config: &AgentConfig,
    events: &mpsc::Sender<AgentEvent>,
    outbound: &mut mpsc::Receiver<Envelope>,
    usb: &mut Option<UsbService>,
) -> Result<(), ClientError> {
    let started = Instant::now();
    let (answers_tx, mut answers) = mpsc::channel::<(String, Option<Scope>)>(16);
    // What the person at this machine consented to, per session: the agent enforces it
    // itself, whatever the server sends.
    let mut consented: HashMap<String, Scope> = HashMap::new();
    let mut status = tokio::time::interval(config.status_interval);
    status.tick().await;
    let mut switch = usb.as_ref().map(UsbService::switch_changes);
    send_status(&mut socket, config, started, usb.as_ref()).await?;
    if let Some(note) = usb.as_ref().and_then(UsbService::acl_problem_note) {
        ws::send(&mut socket, &note).await?;
    }
    loop {
        tokio::select! {
            biased;
            env = usb_outbound(usb) => send_usb_batch(&mut socket, env, usb).await?,
            incoming = ws::recv(&mut socket, AGENT_MAX_MESSAGE) => match incoming? {
                Incoming::Envelope(env) => {
                    if beyond_consent(&consented, &env) {
                        tracing::warn!(session = %env.session_id, "dropped a message beyond the consented scope");
                        continue;
                    }
                    on_envelope(env, config, events, &answers_tx, usb).await;
                }
                Incoming::Closed { code, reason } if ws::is_credential_refusal(code) => {
                    return Err(ClientError::Rejected { code, reason });
                }
                Incoming::Closed { code, reason } => return Err(ClientError::Closed { code, reason }),
            },
            Some((session_id, scope)) = answers.recv() => {
                // What the embedder queued before the answer goes first: the server sees
                // this machine's messages in the order they were made.
                flush_queued(&mut socket, outbound).await?;
                let granted = scope.is_some();
                let body = Body::ConsentResponse(v1::ConsentResponse {
                    granted,
                    access: scope.map_or(v1::AccessMode::Unspecified, |s| s.access.to_wire()).into(),
                    usb: scope.map(|s| s.usb),
                });
                if let Some(scope) = scope {
                    consented.insert(session_id.clone(), scope);
                }
                ws::send(&mut socket, &codec::envelope(&session_id, body)).await?;
                let _ = events.send(AgentEvent::ConsentAnswered { session_id, granted }).await;
            }
            enabled = switch_changed(&mut switch) => {
                if !enabled && let Some(usb) = usb.as_mut() {
                    usb.switch_off();
                }
                send_status(&mut socket, config, started, usb.as_ref()).await?;
            }
            out = outbound.recv() => match out {
                Some(env) => ws::send(&mut socket, &env).await?,
                None => {
                    ws::close_with(&mut socket, close::NORMAL, "agent stopped").await;
                    return Ok(());
                }
            },
            _ = status.tick() => send_status(&mut socket, config, started, usb.as_ref()).await?,
        }
    }
}

/// Sends what is already queued in `outbound` (at most its capacity), without waiting.
async fn flush_queued(
    socket: &mut Ws,
    outbound: &mut mpsc::Receiver<Envelope>,
) -> Result<(), ClientError> {
    for _ in 0..outbound.max_capacity() {
        match outbound.try_recv() {
            Ok(env) => ws::send(socket, &env).await?,
            Err(_) => break,
        }
    }
    Ok(())
}

async fn send_status(
    socket: &mut Ws,
    config: &AgentConfig,
    started: Instant,
    usb: Option<&UsbService>,
) -> Result<(), ClientError> {
    let mut capabilities = config.hello.capabilities.clone().unwrap_or_default();
    let usb_enabled = usb.map_or(capabilities.usb_enabled, UsbService::enabled);
    capabilities.usb_enabled = usb_enabled;
    let body = Body::AgentStatus(v1::AgentStatus {
        uptime_secs: started.elapsed().as_secs(),
        capabilities: Some(capabilities),
        usb_enabled,
        ..Default::default()
    });
    ws::send(socket, &codec::envelope("", body)).await
}

/// The next USB envelope, or never without USB.
async fn usb_outbound(usb: &mut Option<UsbService>) -> Envelope {
    match usb {
        Some(usb) => usb.next_outbound().await,
        None => std::future::pending().await,
    }
}

/// The switch's next value, or never without USB.
async fn switch_changed(switch: &mut Option<tokio::sync::watch::Receiver<bool>>) -> bool {
    let Some(rx) = switch else {
        return std::future::pending().await;
    };
    if rx.changed().await.is_err() {
        *switch = None;
        return std::future::pending().await;
    }
    *rx.borrow_and_update()
}

/// Writes `first` and whatever USB frames are already queued, then flushes once.
async fn send_usb_batch(
    socket: &mut Ws,
    first: Envelope,
    usb: &mut Option<UsbService>,
) -> Result<(), ClientError> {
    ws::feed(socket, &first).await?;
    if let Some(usb) = usb.as_mut() {
        for _ in 0..USB_BATCH {
            match usb.try_next_frame() {
                Some(env) => ws::feed(socket, &env).await?,
                None => break,
            }
        }
    }
    ws::flush(socket).await
}

/// Whether a message asks for more than the person at this machine consented to in its
/// session (input after a view-only yes, USB after a yes without USB). The same access rule
/// the server applies, with this machine's own consent as the only limit.
fn beyond_consent(consented: &HashMap<String, Scope>, env: &Envelope) -> bool {
    let (Some(scope), Some(body)) = (consented.get(&env.session_id), env.body.as_ref()) else {
        return false;
    };
    let full = ViewerGrant {
        access: ViewerAccess::Control,
        usb: Ok(()),
    };
    let inputs = AccessInputs {
        caller: CallerRights::ALL,
        session: *scope,
        consent: Consent::Granted(*scope),
        host: None,
    };
    let Ok(mine) = decide_viewer_grant(&inputs) else {
        return true;
    };
    let passes = |v| matches!(v, ViewerVerdict::Forward | ViewerVerdict::ForwardThrottled);
    passes(judge_viewer_message(&full, body)) && !passes(judge_viewer_message(&mine, body))
}

async fn on_envelope(
    env: Envelope,
    config: &AgentConfig,
    events: &mpsc::Sender<AgentEvent>,
    answers: &mpsc::Sender<(String, Option<Scope>)>,
    usb: &mut Option<UsbService>,
) {
    if let Some(usb) = usb.as_mut() {
        match &env.body {
            Some(Body::Usb(frame)) => {
                let key = ViewerKey {
                    session_id: env.session_id,
                    viewer_id: env.viewer_id,
                };
                return usb.handle_frame(key, frame.frame.clone()).await;
            }
            Some(Body::SessionEvent(event)) => usb.handle_session_event(&env, event),
            Some(Body::UsbAttachNote(note)) => {
                let key = ViewerKey {
                    session_id: env.session_id.clone(),
                    viewer_id: env.viewer_id,
                };
                return usb.handle_attach_note(key, note);
            }
            _ => {}
        }
    }
    match env.body {
        Some(Body::ConsentRequest(req)) => {
            let access = req.access();
            let question = ConsentQuestion {
                session_id: env.session_id,
                technician: req.technician,
                tenant: req.tenant,
                access,
                usb: req.usb,
                usb_device: None,
            };
            tokio::spawn(ask(config.prompt.clone(), question, answers.clone()));
        }
        _ => {
            let _ = events.send(AgentEvent::Message(env)).await;
        }
    }
}

/// Asks on a blocking thread; no answer within the consent timeout is a no.
async fn ask(
    prompt: std::sync::Arc<dyn crate::consent::ConsentPrompt>,
    question: ConsentQuestion,
    answers: mpsc::Sender<(String, Option<Scope>)>,
) {
    let session_id = question.session_id.clone();
    let asked = Scope {
        access: ViewerAccess::from_wire(question.access).unwrap_or(ViewerAccess::ViewOnly),
        usb: question.usb,
    };
    tracing::info!(session = %session_id, provider = prompt.name(), "asking for consent");
    let blocking = tokio::task::spawn_blocking(move || prompt.ask(&question));
    let answer = tokio::time::timeout(CONSENT_TIMEOUT, blocking).await;
    let granted = matches!(
        answer,
        Ok(Ok(ConsentAnswer::Yes | ConsentAnswer::YesRemember))
    );
    tracing::info!(session = %session_id, granted, "consent answered");
    let _ = answers.send((session_id, granted.then_some(asked))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(session_id: &str, body: Body) -> Envelope {
        codec::envelope(session_id, body)
    }

    fn consented(access: ViewerAccess, usb: bool) -> HashMap<String, Scope> {
        HashMap::from([("s".to_owned(), Scope { access, usb })])
    }

    #[test]
    fn an_agent_that_consented_to_view_only_drops_input_and_usb_whatever_the_server_sends() {
        let view_only = consented(ViewerAccess::ViewOnly, false);
        let key = Body::Key(v1::KeyEvent::default());
        let usb = Body::Usb(v1::UsbFrame::default());
        assert!(beyond_consent(&view_only, &env("s", key.clone())));
        assert!(beyond_consent(&view_only, &env("s", usb.clone())));
        let keyframe = Body::KeyframeRequest(v1::KeyframeRequest {});
        assert!(!beyond_consent(&view_only, &env("s", keyframe)));
        let event = Body::SessionEvent(v1::SessionEvent::default());
        assert!(
            !beyond_consent(&view_only, &env("s", event)),
            "server notices pass"
        );
        assert!(
            !beyond_consent(&view_only, &env("other", key)),
            "only the consented session is limited"
        );
    }

    #[test]
    fn an_agent_that_consented_to_control_without_usb_drops_only_usb() {
        let control = consented(ViewerAccess::Control, false);
        assert!(!beyond_consent(
            &control,
            &env("s", Body::Key(v1::KeyEvent::default()))
        ));
        assert!(beyond_consent(
            &control,
            &env("s", Body::Usb(v1::UsbFrame::default()))
        ));
        let with_usb = consented(ViewerAccess::Control, true);
        assert!(!beyond_consent(
            &with_usb,
            &env("s", Body::Usb(v1::UsbFrame::default()))
        ));
    }
}
