//! A `reach server` child process for benchmarks that must measure the server alone: its own
//! cores' worth of scheduling, its own memory (read from `/proc/<pid>/status`), a fresh data
//! directory, an ephemeral loopback port.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};

/// Printed by `reach server` once it listens; the URL follows.
const LISTENING: &str = "Reach server listening on ";

/// How long the child may take to say it listens (a profiler wrapper makes it slow).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// More for the child: arguments after `server …` and environment variables.
#[derive(Debug, Default, Clone)]
pub struct Extra {
    /// Arguments.
    pub args: Vec<String>,
    /// Environment.
    pub env: Vec<(String, String)>,
}

/// A running `reach server` child; killed when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts `binary server` (behind `wrapper`, e.g. `valgrind --tool=callgrind`, when
    /// given) on `127.0.0.1:0` with a fresh data directory and `admin_password`.
    ///
    /// # Errors
    /// The binary cannot be started or does not report its address in time.
    pub async fn start(
        binary: PathBuf,
        wrapper: &[String],
        admin_password: &str,
    ) -> anyhow::Result<Self> {
        Self::start_with(binary, wrapper, admin_password, &Extra::default()).await
    }

    /// [`Self::start`] with more arguments and environment (a shared database, a bus).
    ///
    /// # Errors
    /// As [`Self::start`].
    pub async fn start_with(
        binary: PathBuf,
        wrapper: &[String],
        admin_password: &str,
        extra: &Extra,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("temporary data directory")?;
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&binary);
                c
            }
            None => Command::new(&binary),
        };
        command
            .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(&extra.args)
            .envs(extra.env.iter().map(|(k, v)| (k, v)))
            .env("REACH_ADMIN_PASSWORD", admin_password)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = child.stdout.take().context("server stdout")?;
        let reading = tokio::task::spawn_blocking(move || read_url(stdout));
        let url = match tokio::time::timeout(START_TIMEOUT, reading).await {
            Ok(Ok(Ok(url))) => url,
            Ok(Ok(Err(err))) => {
                let _ = child.kill();
                return Err(err);
            }
            _ => {
                let _ = child.kill();
                bail!("the server did not report its address within {START_TIMEOUT:?}");
            }
        };
        Ok(Self { child, url, dir })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The child's resident memory now, in KiB.
    ///
    /// # Errors
    /// `/proc/<pid>/status` cannot be read or has no `VmRSS` line.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let path = format!("/proc/{}/status", self.child.id());
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .with_context(|| format!("no VmRSS in {path}"))
    }

    /// CPU time the child has used so far (user + system), from `/proc/<pid>/stat`, in
    /// clock ticks of 10 ms.
    ///
    /// # Errors
    /// `/proc/<pid>/stat` cannot be read or parsed.
    pub fn cpu_ticks(&self) -> anyhow::Result<u64> {
        cpu_ticks_of(self.child.id())
    }

    /// Asks the server to stop (SIGTERM) and waits for it, so a profiler wrapper writes its
    /// output; kills it after `grace`.
    pub async fn stop(mut self, grace: Duration) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = tokio::time::Instant::now() + grace;
        while tokio::time::Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Reads the child's stdout until it names its URL, then keeps draining it on a thread.
fn read_url(stdout: std::process::ChildStdout) -> anyhow::Result<String> {
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.context("reading the server's output")?;
        if let Some(url) = line.strip_prefix(LISTENING) {
            let url = url.trim().to_owned();
            std::thread::spawn(move || lines.for_each(drop));
            return Ok(url);
        }
    }
    bail!("the server exited before it listened")
}

/// CPU time process `pid` has used so far (user + system), from `/proc/<pid>/stat`, in clock
/// ticks of 10 ms.
///
/// # Errors
/// `/proc/<pid>/stat` cannot be read or parsed.
pub fn cpu_ticks_of(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // Fields after the command name (which may hold spaces) start at `) `.
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
    // utime and stime are fields 14 and 15 of stat(5); 12 and 13 after the name.
    tick(11)
        .zip(tick(12))
        .map(|(user, system)| user + system)
        .with_context(|| format!("no CPU times in {path}"))
}
