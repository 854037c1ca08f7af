//! The passthrough switch (SPEC §9.1): off by default; on with `REACH_USB_PASSTHROUGH=1`, the
//! config file written by `reach usb enable`, or the programmatic setting, which overrides both.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// File name of the switch in the config directory.
pub const FILE_NAME: &str = "usb-passthrough.json";
/// Environment variable.
pub const ENV_VAR: &str = "REACH_USB_PASSTHROUGH";

/// Where the effective setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Programmatic/API setting.
    Api,
    /// `REACH_USB_PASSTHROUGH`.
    Env,
    /// The config file.
    Config,
    /// Nothing set: off.
    Default,
}

/// The effective switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Enablement {
    /// On or off.
    pub enabled: bool,
    /// Why.
    pub source: Source,
}

#[derive(Serialize, Deserialize)]
struct SwitchFile {
    enabled: bool,
}

fn parse_flag(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

/// Resolves the switch: `api` > `env` (the value of [`ENV_VAR`]) > config file > off.
pub fn resolve(config_dir: &Path, api: Option<bool>, env: Option<&str>) -> Enablement {
    if let Some(enabled) = api {
        return Enablement {
            enabled,
            source: Source::Api,
        };
    }
    if let Some(enabled) = env.and_then(parse_flag) {
        return Enablement {
            enabled,
            source: Source::Env,
        };
    }
    let file = std::fs::read(config_dir.join(FILE_NAME))
        .ok()
        .and_then(|b| serde_json::from_slice::<SwitchFile>(&b).ok());
    match file {
        Some(f) => Enablement {
            enabled: f.enabled,
            source: Source::Config,
        },
        None => Enablement {
            enabled: false,
            source: Source::Default,
        },
    }
}

/// Writes the config-file switch.
///
/// # Errors
/// When the directory or file cannot be written.
pub fn set(config_dir: &Path, enabled: bool) -> std::io::Result<()> {
    std::fs::create_dir_all(config_dir)?;
    let bytes = serde_json::to_vec(&SwitchFile { enabled }).unwrap_or_default();
    crate::audit::write_atomic(&config_dir.join(FILE_NAME), &bytes).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_then_config_then_env_then_api() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            resolve(dir.path(), None, None),
            Enablement {
                enabled: false,
                source: Source::Default
            }
        );
        set(dir.path(), true).unwrap();
        assert_eq!(
            resolve(dir.path(), None, None),
            Enablement {
                enabled: true,
                source: Source::Config
            }
        );
        assert_eq!(
            resolve(dir.path(), None, Some("0")),
            Enablement {
                enabled: false,
                source: Source::Env
            }
        );
        assert_eq!(
            resolve(dir.path(), Some(true), Some("0")),
            Enablement {
                enabled: true,
                source: Source::Api
            }
        );
        assert_eq!(
            resolve(dir.path(), None, Some("garbage")).source,
            Source::Config
        );
    }
}
