//! Server operations from a terminal: `reach machines|keys|codes|sessions|users|audit …`.
//! Each verb builds one `reach_client::ops::Op` and runs it with the stored login (`reach
//! login`, or `REACH_SERVER` + `REACH_TOKEN`); `--json` prints the server's answer, otherwise a
//! table. Parsing and printing only: the operations live in `reach-client`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use reach_client::login::Login;
use reach_client::ops::{self, Access, Op, Role};

/// `reach <command> <verb>` with the options every verb takes.
#[derive(Debug, Args)]
pub(crate) struct OpsArgs<V: Subcommand> {
    #[command(subcommand)]
    pub(crate) verb: V,
    #[command(flatten)]
    pub(crate) common: Common,
}

/// Options every verb takes.
#[derive(Debug, Args)]
pub(crate) struct Common {
    /// Print the server's JSON answer instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// Config directory holding the login [default: REACH_CONFIG_DIR, else $XDG_CONFIG_HOME/reach].
    #[arg(long, env = "REACH_CONFIG_DIR", global = true)]
    config_dir: Option<PathBuf>,
}

/// `reach machines …`.
#[derive(Debug, Subcommand)]
pub(crate) enum Machines {
    /// Machines of your tenant (online first).
    List {
        /// Only machines whose name, organization, site, host name or a tag contains this.
        #[arg(long)]
        q: Option<String>,
    },
    /// One machine.
    Show {
        /// Machine id.
        id: String,
    },
    /// Adds a machine (then `reach keys issue MACHINE` for its agent key).
    Create {
        /// Display name.
        name: String,
        /// Organization (customer).
        #[arg(long)]
        organization: Option<String>,
        /// Site.
        #[arg(long)]
        site: Option<String>,
        /// Tag (repeat for several).
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
    /// Deletes a machine: revokes its keys (its agent is disconnected), ends its live sessions.
    Delete {
        /// Machine id.
        id: String,
    },
    /// Changes a machine; options not given stay as they are.
    Update {
        /// Machine id.
        id: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// New organization.
        #[arg(long)]
        organization: Option<String>,
        /// New site.
        #[arg(long)]
        site: Option<String>,
        /// Replace the tags (repeat for several).
        #[arg(long = "tag")]
        tags: Option<Vec<String>>,
    },
}

/// `reach keys …`: agent keys of a machine.
#[derive(Debug, Subcommand)]
pub(crate) enum Keys {
    /// Issues a key for the machine's agent (shown once; give it to `reach agent --key`).
    Issue {
        /// Machine id.
        machine: String,
    },
    /// The machine's keys (prefixes only; a key is never shown again).
    List {
        /// Machine id.
        machine: String,
    },
    /// Revokes a key; an agent connected with it is disconnected at once.
    Revoke {
        /// Machine id.
        machine: String,
        /// Key id.
        key: String,
    },
}

/// What a session or code asks for.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum AccessArg {
    ViewOnly,
    Control,
}

impl From<AccessArg> for Access {
    fn from(a: AccessArg) -> Self {
        match a {
            AccessArg::ViewOnly => Self::ViewOnly,
            AccessArg::Control => Self::Control,
        }
    }
}

/// `reach codes …`: one-time support codes for attended support.
#[derive(Debug, Subcommand)]
pub(crate) enum Codes {
    /// Creates a code to read to the person you help (`reach agent --code CODE` on their side).
    Create {
        /// Access to ask for [default: control when you may, else view-only].
        #[arg(long, value_enum)]
        access: Option<AccessArg>,
        /// Also ask for USB devices.
        #[arg(long)]
        usb: bool,
        /// Lifetime in seconds, 60–86400.
        #[arg(long)]
        ttl_secs: Option<u64>,
    },
    /// Unused codes.
    List,
    /// Revokes an unused code.
    Revoke {
        /// Code id.
        id: String,
    },
}

/// `reach sessions …`.
#[derive(Debug, Subcommand)]
pub(crate) enum Sessions {
    /// Live sessions (`--all` adds ended ones).
    List {
        /// Include ended sessions.
        #[arg(long)]
        all: bool,
    },
    /// Opens a session to an online managed machine (returns the open one if there is one).
    Open {
        /// Machine id.
        machine: String,
        /// Access to ask for.
        #[arg(long, value_enum)]
        access: Option<AccessArg>,
        /// Also USB.
        #[arg(long)]
        usb: bool,
    },
    /// Ends a session (needs control, or being its creator).
    End {
        /// Session id.
        id: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum RoleArg {
    Admin,
    Technician,
    Viewer,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Admin => Self::Admin,
            RoleArg::Technician => Self::Technician,
            RoleArg::Viewer => Self::Viewer,
        }
    }
}

/// `reach users …`.
#[derive(Debug, Subcommand)]
pub(crate) enum Users {
    /// Users of your tenant.
    List,
    /// Adds a user; the password is read from REACH_NEW_PASSWORD.
    Create {
        /// Login name.
        username: String,
        /// Role.
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// Changes a user's role or disables/enables them.
    Update {
        /// User id.
        id: String,
        /// New role.
        #[arg(long, value_enum)]
        role: Option<RoleArg>,
        /// Disable (true) or enable (false).
        #[arg(long)]
        disabled: Option<bool>,
    },
    /// Deletes a user.
    Delete {
        /// User id.
        id: String,
    },
}

/// `reach audit …`.
#[derive(Debug, Subcommand)]
pub(crate) enum Audit {
    /// Verifies the tenant's hash chain and its recorded heads.
    Verify,
    /// Newest records first.
    List {
        /// Only this event type, e.g. `login_failed`.
        #[arg(long)]
        event_type: Option<String>,
        /// At most this many (1–500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

impl Machines {
    fn op(self) -> Op {
        match self {
            Self::List { q } => Op::MachinesList { q },
            Self::Show { id } => Op::MachinesShow { id },
            Self::Delete { id } => Op::MachinesDelete { id },
            Self::Create {
                name,
                organization,
                site,
                tags,
            } => Op::MachinesCreate {
                name,
                organization,
                site,
                tags: (!tags.is_empty()).then_some(tags),
            },
            Self::Update {
                id,
                name,
                organization,
                site,
                tags,
            } => Op::MachinesUpdate {
                id,
                name,
                organization,
                site,
                tags,
            },
        }
    }
}

impl Keys {
    fn op(self) -> Op {
        match self {
            Self::Issue { machine } => Op::AgentKeyIssue { machine },
            Self::List { machine } => Op::AgentKeyList { machine },
            Self::Revoke { machine, key } => Op::AgentKeyRevoke { machine, key },
        }
    }
}

impl Codes {
    fn op(self) -> Op {
        match self {
            Self::Create {
                access,
                usb,
                ttl_secs,
            } => Op::SupportCodeCreate {
                access: access.map(Access::from),
                usb: Some(usb),
                ttl_secs,
            },
            Self::List => Op::SupportCodeList,
            Self::Revoke { id } => Op::SupportCodeRevoke { id },
        }
    }
}

impl Sessions {
    fn op(self) -> Op {
        match self {
            Self::List { all } => Op::SessionList { include_ended: all },
            Self::Open {
                machine,
                access,
                usb,
            } => Op::SessionOpen {
                machine,
                access: access.map(Access::from),
                usb: Some(usb),
            },
            Self::End { id } => Op::SessionEnd { id },
        }
    }
}

impl Users {
    fn op(self) -> anyhow::Result<Op> {
        Ok(match self {
            Self::List => Op::UsersList,
            Self::Create { username, role } => Op::UsersCreate {
                username,
                password: std::env::var("REACH_NEW_PASSWORD")
                    .ok()
                    .filter(|p| !p.is_empty())
                    .context("set REACH_NEW_PASSWORD to the new user's initial password")?,
                role: role.into(),
            },
            Self::Update { id, role, disabled } => Op::UsersUpdate {
                id,
                role: role.map(Role::from),
                disabled,
            },
            Self::Delete { id } => Op::UsersDelete { id },
        })
    }
}

impl Audit {
    fn op(self) -> Op {
        match self {
            Self::Verify => Op::AuditVerify,
            Self::List { event_type, limit } => Op::AuditList {
                event_type,
                limit: Some(limit),
            },
        }
    }
}

/// A verb of one of the server-operation commands.
#[derive(Debug)]
pub(crate) enum Verb {
    Machines(Machines),
    Keys(Keys),
    Codes(Codes),
    Sessions(Sessions),
    Users(Users),
    Audit(Audit),
}

/// Runs the verb with the stored login and prints the answer.
pub(crate) fn run(verb: Verb, common: &Common) -> anyhow::Result<()> {
    let op = match verb {
        Verb::Machines(v) => v.op(),
        Verb::Keys(v) => v.op(),
        Verb::Codes(v) => v.op(),
        Verb::Sessions(v) => v.op(),
        Verb::Users(v) => v.op()?,
        Verb::Audit(v) => v.op(),
    };
    let login = Login::load(common.config_dir.as_deref())?;
    let api = login.api()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let answer = runtime
        .block_on(ops::run(&api, &op))
        .map_err(|e| anyhow::anyhow!(ops::refusal(&e)))?;
    if common.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        print!("{}", super::table::render(&op, &answer));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_the_ops_fields() {
        let op = Machines::Create {
            name: "front desk".into(),
            organization: None,
            site: Some("HQ".into()),
            tags: vec![],
        }
        .op();
        assert_eq!(
            op,
            Op::MachinesCreate {
                name: "front desk".into(),
                organization: None,
                site: Some("HQ".into()),
                tags: None
            }
        );
        let op = Sessions::Open {
            machine: "m".into(),
            access: Some(AccessArg::ViewOnly),
            usb: true,
        }
        .op();
        assert_eq!(
            op,
            Op::SessionOpen {
                machine: "m".into(),
                access: Some(Access::ViewOnly),
                usb: Some(true)
            }
        );
    }
}
