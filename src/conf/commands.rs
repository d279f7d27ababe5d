//! Output of the config-only commands: `tern config check FILE`, `tern config print`, and
//! `-t`. main.rs calls [`run_config_subcommand`] and exits with its code; nothing here
//! starts a server.

use std::io::Write;

use crate::cli::{Command, Overrides, RunArgs};
use crate::conf::load;

/// Runs `ConfigCheck`, `ConfigPrint` or `TestConfig` printing to stdout/stderr; returns
/// the process exit code (0 ok, 1 config errors, 2 for a command it does not handle).
pub fn run_config_subcommand(cmd: &Command) -> i32 {
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    run_config_subcommand_to(cmd, &mut out, &mut err)
}

/// [`run_config_subcommand`] with explicit writers (tests).
pub fn run_config_subcommand_to(cmd: &Command, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    // Write errors on stdout/stderr (closed pipe) cannot be reported anywhere better.
    match cmd {
        Command::ConfigCheck(file) => {
            let shown = file.display();
            match load(Some(file), &Overrides::default()) {
                Ok(l) => {
                    for w in &l.warnings {
                        let _ = writeln!(err, "warning: {w}");
                    }
                    let _ = writeln!(out, "configuration file {shown} is valid");
                    0
                }
                Err(errors) => {
                    for e in &errors {
                        let _ = writeln!(err, "error: {e}");
                    }
                    let _ = writeln!(
                        err,
                        "configuration file {shown} has {} error{}",
                        errors.len(),
                        if errors.len() == 1 { "" } else { "s" }
                    );
                    1
                }
            }
        }
        Command::ConfigPrint { file, json } => match load(file.as_deref(), &Overrides::default()) {
            Ok(l) => {
                for w in &l.warnings {
                    let _ = writeln!(err, "warning: {w}");
                }
                let text = if *json {
                    serde_json::to_string_pretty(&l.config).map_err(|e| e.to_string())
                } else {
                    toml::to_string(&l.config).map_err(|e| e.to_string())
                };
                match text {
                    Ok(t) => {
                        let _ = writeln!(out, "{}", t.trim_end());
                        0
                    }
                    Err(e) => {
                        let _ = writeln!(err, "error: cannot print config: {e}");
                        1
                    }
                }
            }
            Err(errors) => {
                for e in &errors {
                    let _ = writeln!(err, "error: {e}");
                }
                1
            }
        },
        Command::TestConfig(RunArgs {
            config_file,
            overrides,
        }) => match load(config_file.as_deref(), overrides) {
            Ok(l) => {
                for w in &l.warnings {
                    let _ = writeln!(err, "tern: warning: {w}");
                }
                match config_file {
                    Some(f) => {
                        let _ = writeln!(out, "tern: configuration file {} is valid", f.display());
                    }
                    None => {
                        let _ = writeln!(out, "tern: configuration is valid");
                    }
                }
                0
            }
            Err(errors) => {
                for e in &errors {
                    let _ = writeln!(err, "tern: {e}");
                }
                1
            }
        },
        other => {
            let _ = writeln!(err, "tern: not a config command: {other:?}");
            2
        }
    }
}
