//! Output of the config-only commands: `tern config check FILE`, `tern config print`, and
//! `-t`. main.rs calls [`run_config_subcommand`] and exits with its code; nothing here
//! starts a server.

use std::io::Write;

use crate::cli::{Command, Overrides, RunArgs};
use crate::conf::load;
use crate::conf::load::check_with_env;

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
            let r = check_with_env(Some(file), &Overrides::default(), None);
            for w in &r.warnings {
                let _ = writeln!(err, "warning: {w}");
            }
            for e in &r.errors {
                let _ = writeln!(err, "error: {e}");
            }
            if r.errors.is_empty() {
                let _ = writeln!(out, "configuration file {shown} is valid");
                0
            } else {
                let n = r.errors.len();
                let plural = if n == 1 { "" } else { "s" };
                let _ = writeln!(err, "configuration file {shown} has {n} error{plural}");
                1
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/conf")
            .join(name)
    }

    fn run(cmd: &Command) -> (i32, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_config_subcommand_to(cmd, &mut out, &mut err);
        (
            code,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    }

    fn temp(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tern-cmd-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    #[test]
    fn check_valid_file_prints_warnings_and_exits_0() {
        let (code, out, err) = run(&Command::ConfigCheck(fixture("cluster.conf")));
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("cluster.conf is valid"), "{out}");
        assert!(
            err.contains("warning: ") && err.contains("cluster.conf:14:3: cluster pool_size"),
            "{err}"
        );
    }

    #[test]
    fn check_prints_every_error_and_exits_1() {
        let p = temp(
            "bad.conf",
            "port: abc\nfoo: 1\nmax_payload: $NOPE\nhost: a b\n",
        );
        let (code, _out, err) = run(&Command::ConfigCheck(p));
        assert_eq!(code, 1);
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
        // Syntax and key errors together, in file order; the unknown key is a warning.
        assert_eq!(errors.len(), 3, "{err}");
        assert!(
            errors[0].contains("bad.conf:1:7: invalid value for \"port\""),
            "{err}"
        );
        assert!(
            errors[1].contains("bad.conf:3:14: variable reference for 'NOPE'"),
            "{err}"
        );
        assert!(errors[2].contains("bad.conf:4:9: "), "{err}");
        assert!(err.contains("has 3 errors"), "{err}");
        assert!(err.contains("bad.conf:2:1: unknown field \"foo\""), "{err}");
        let p = temp("bad2.conf", "port: abc\ndebug: 1\n");
        let (code, _out, err) = run(&Command::ConfigCheck(p));
        assert_eq!(code, 1);
        assert!(
            err.contains("bad2.conf:1:7: invalid value for \"port\""),
            "{err}"
        );
        assert!(
            err.contains("bad2.conf:2:8: invalid value for \"debug\""),
            "{err}"
        );
    }

    #[test]
    fn print_toml_and_json() {
        let file = Some(fixture("harness_auth.conf"));
        let (code, out, err) = run(&Command::ConfigPrint {
            file: file.clone(),
            json: false,
        });
        assert_eq!(code, 0, "{err}");
        let parsed: toml::Table = toml::from_str(&out).expect("valid TOML");
        assert_eq!(
            parsed.get("port").and_then(toml::Value::as_integer),
            Some(4555)
        );
        assert_eq!(
            parsed.get("ping_interval").and_then(toml::Value::as_str),
            Some("2m0s")
        );
        let (code, out, err) = run(&Command::ConfigPrint { file, json: true });
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
        assert_eq!(v["port"], 4555);
        assert_eq!(v["authorization"]["users"][0]["user"], "derek");
        assert_eq!(v["authorization"]["timeout"], "2s");
        // The printed TOML loads back to the same config.
        let (_, toml_out, _) = run(&Command::ConfigPrint {
            file: Some(fixture("cluster.conf")),
            json: false,
        });
        let p = temp("roundtrip.toml", &toml_out);
        let back = crate::conf::load(Some(&p), &Overrides::default()).expect("reloads");
        let orig = crate::conf::load(Some(&fixture("cluster.conf")), &Overrides::default())
            .expect("loads");
        let mut a = back.config;
        a.config_file = None;
        let mut b = orig.config;
        b.config_file = None;
        assert_eq!(a, b);
    }

    #[test]
    fn test_flag_output() {
        let ok = RunArgs {
            config_file: Some(fixture("cluster.conf")),
            overrides: Overrides::default(),
        };
        let (code, out, _) = run(&Command::TestConfig(ok));
        assert_eq!(code, 0);
        assert!(
            out.starts_with("tern: configuration file ") && out.contains("is valid"),
            "{out}"
        );
        let bad = RunArgs {
            config_file: Some(temp("t.conf", "lame_duck_duration: \"1s\"\n")),
            overrides: Overrides::default(),
        };
        let (code, _, err) = run(&Command::TestConfig(bad));
        assert_eq!(code, 1);
        assert!(
            err.contains("t.conf:1:21: invalid lame_duck_duration of 1s, minimum is 30 seconds"),
            "{err}"
        );
        assert_eq!(run(&Command::Help).0, 2);
    }
}
