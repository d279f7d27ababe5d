//! Command-line parsing against nats-server's flags, forms and error texts.
use super::*;

fn parse(args: &[&str]) -> Result<Command, CliError> {
    parse_args(args.iter().map(|s| s.to_string()))
}

fn run_overrides(args: &[&str]) -> Overrides {
    match parse(args) {
        Ok(Command::Run(r)) => r.overrides,
        other => panic!("{args:?}: {other:?}"),
    }
}

#[test]
fn single_and_double_dash_and_equals_are_the_same() {
    for args in [
        &["-p", "4333"][..],
        &["--p", "4333"],
        &["-p=4333"],
        &["--port", "4333"],
        &["--port=4333"],
        &["-port", "4333"],
    ] {
        assert_eq!(run_overrides(args).port, Some(4333), "{args:?}");
    }
    assert_eq!(run_overrides(&["-p", "-1"]).port, Some(-1));
}

#[test]
fn all_value_flags() {
    let o = run_overrides(&[
        "-a",
        "::1",
        "-n",
        "srv",
        "-m",
        "8222",
        "-ms",
        "8443",
        "-l",
        "/tmp/l.log",
        "-P",
        "/tmp/p.pid",
        "--user",
        "u",
        "--pass",
        "p",
        "--auth",
        "tok",
        "--ports_file_dir",
        "/tmp",
        "--client_advertise",
        "h:1",
        "-sd",
        "/data",
        "--max_traced_msg_len",
        "10",
        "--log_size_limit",
        "1MB",
        "--cluster_name",
        "C",
        "--cluster_advertise",
        "c:2",
        "--routes",
        "nats://a:1, nats://b:2",
        "--connect_retries",
        "3",
        "--cluster_listen",
        "nats://0.0.0.0:6222",
    ]);
    assert_eq!(o.host.as_deref(), Some("::1"));
    assert_eq!(o.server_name.as_deref(), Some("srv"));
    assert_eq!((o.http_port, o.https_port), (Some(8222), Some(8443)));
    assert_eq!(o.log_file, Some(PathBuf::from("/tmp/l.log")));
    assert_eq!(o.pid_file, Some(PathBuf::from("/tmp/p.pid")));
    assert_eq!(
        (o.user.as_deref(), o.pass.as_deref()),
        (Some("u"), Some("p"))
    );
    assert_eq!(o.token.as_deref(), Some("tok"));
    assert_eq!(o.ports_file_dir, Some(PathBuf::from("/tmp")));
    assert_eq!(o.client_advertise.as_deref(), Some("h:1"));
    assert_eq!(o.store_dir, Some(PathBuf::from("/data")));
    assert_eq!(o.max_traced_msg_len, Some(10));
    assert_eq!(o.log_size_limit, Some(1 << 20));
    assert_eq!(o.cluster_name.as_deref(), Some("C"));
    assert_eq!(o.cluster_advertise.as_deref(), Some("c:2"));
    assert_eq!(
        o.routes,
        Some(vec!["nats://a:1".into(), "nats://b:2".into()])
    );
    assert_eq!(o.connect_retries, Some(3));
    assert_eq!(o.cluster_listen.as_deref(), Some("nats://0.0.0.0:6222"));
    for alias in ["--addr", "--net"] {
        assert_eq!(run_overrides(&[alias, "h"]).host.as_deref(), Some("h"));
    }
    for alias in ["--name", "--server_name"] {
        assert_eq!(
            run_overrides(&[alias, "x"]).server_name.as_deref(),
            Some("x")
        );
    }
    assert_eq!(
        run_overrides(&["--cluster", "nats://h:1"])
            .cluster_listen
            .as_deref(),
        Some("nats://h:1")
    );
}

#[test]
fn bool_flags_and_multi_letter_forms() {
    let o = run_overrides(&["-D"]);
    assert_eq!((o.debug, o.trace), (Some(true), None));
    let o = run_overrides(&["-V"]);
    assert_eq!((o.debug, o.trace), (None, Some(true)));
    for f in ["-DV", "-DVV", "--DV"] {
        let o = run_overrides(&[f]);
        assert_eq!((o.debug, o.trace), (Some(true), Some(true)), "{f}");
    }
    assert_eq!(run_overrides(&["-VV"]).trace, Some(true));
    assert_eq!(run_overrides(&["-T=false"]).logtime, Some(false));
    assert_eq!(run_overrides(&["--logtime"]).logtime, Some(true));
    assert_eq!(run_overrides(&["-D=0"]).debug, Some(false));
    assert_eq!(run_overrides(&["-js"]).jetstream, Some(true));
    assert_eq!(run_overrides(&["--jetstream"]).jetstream, Some(true));
    assert_eq!(run_overrides(&["--no_advertise"]).no_advertise, Some(true));
    assert!(matches!(
        parse(&["-D=maybe"]),
        Err(CliError::InvalidValue { .. })
    ));
}

#[test]
fn bool_flag_does_not_take_the_next_argument() {
    // Go: `-D false` sets -D and stops at the positional "false".
    assert_eq!(
        parse(&["-D", "false"]),
        Err(CliError::UnexpectedArg("false".into()))
    );
}

#[test]
fn config_test_help_version() {
    match parse(&["-c", "x.conf", "-t", "-p", "1"]) {
        Ok(Command::TestConfig(r)) => {
            assert_eq!(r.config_file, Some(PathBuf::from("x.conf")));
            assert_eq!(r.overrides.port, Some(1));
        }
        other => panic!("{other:?}"),
    }
    match parse(&["--config=y.conf"]) {
        Ok(Command::Run(r)) => assert_eq!(r.config_file, Some(PathBuf::from("y.conf"))),
        other => panic!("{other:?}"),
    }
    for h in ["-h", "--help"] {
        assert_eq!(parse(&[h]), Ok(Command::Help));
    }
    for v in ["-v", "--version"] {
        assert_eq!(parse(&[v]), Ok(Command::Version));
    }
    assert!(version_string().starts_with(&format!("tern: v{}", env!("CARGO_PKG_VERSION"))));
    assert!(version_string().contains("nats-server"));
    assert!(usage().contains("--cluster_name"));
}

#[test]
fn errors_like_go_flag() {
    let e = parse(&["-foo"]).unwrap_err();
    assert_eq!(e.to_string(), "flag provided but not defined: -foo");
    assert!(e.wants_usage());
    assert_eq!(
        parse(&["--bar=1"]).unwrap_err().to_string(),
        "flag provided but not defined: -bar"
    );
    assert_eq!(
        parse(&["-p"]).unwrap_err().to_string(),
        "flag needs an argument: -p"
    );
    assert_eq!(
        parse(&["-p", "abc"]).unwrap_err().to_string(),
        "invalid value \"abc\" for flag -p: parse error"
    );
    assert_eq!(
        parse(&["foo"]).unwrap_err().to_string(),
        "unrecognized command: \"foo\""
    );
    assert_eq!(
        parse(&["---x"]).unwrap_err(),
        CliError::BadSyntax("---x".into())
    );
    assert!(matches!(
        parse(&["--cluster", "nope"]),
        Err(CliError::InvalidValue { .. })
    ));
}

#[test]
fn unsupported_flags_are_named() {
    for (args, name) in [
        (&["--syslog"][..], "syslog"),
        (&["-s"], "syslog"),
        (&["-r", "udp://x:514"], "remote_syslog"),
        (&["--profile", "6060"], "profile"),
        (&["--help_tls"], "help_tls"),
    ] {
        assert_eq!(
            parse(args).unwrap_err().to_string(),
            format!("flag --{name} is not supported by tern yet"),
            "{args:?}"
        );
    }
}

#[test]
fn double_dash_ends_flags() {
    assert_eq!(
        parse(&["-p", "1", "--"]).map(|c| matches!(c, Command::Run(_))),
        Ok(true)
    );
    assert_eq!(
        parse(&["--", "x"]),
        Err(CliError::UnexpectedArg("x".into()))
    );
}

#[test]
fn signals() {
    assert_eq!(
        parse(&["--signal", "ldm=1234"]),
        Ok(Command::Signal {
            command: "ldm".into(),
            pid: Some("1234".into())
        })
    );
    assert_eq!(
        parse(&["-sl", "reload"]),
        Ok(Command::Signal {
            command: "reload".into(),
            pid: None
        })
    );
    assert_eq!(
        parse(&["-sl=quit=nats-server*"]),
        Ok(Command::Signal {
            command: "quit".into(),
            pid: Some("nats-server*".into())
        })
    );
    for s in SIGNALS {
        assert!(
            matches!(parse(&["-sl", s]), Ok(Command::Signal { .. })),
            "{s}"
        );
    }
    assert_eq!(
        parse(&["-sl", "bogus"]),
        Err(CliError::BadSignal("bogus".into()))
    );
    // A pid file, named directly or through -P, is read.
    let dir = std::env::temp_dir().join(format!("tern-cli-sig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let pf = dir.join("t.pid");
    std::fs::write(&pf, "4321").expect("write");
    let arg = format!("stop={}", pf.display());
    assert_eq!(
        parse(&["--signal", &arg]),
        Ok(Command::Signal {
            command: "stop".into(),
            pid: Some("4321".into())
        })
    );
    let pfs = pf.display().to_string();
    assert_eq!(
        parse(&["-P", &pfs, "--signal", "term"]),
        Ok(Command::Signal {
            command: "term".into(),
            pid: Some("4321".into())
        })
    );
    assert!(matches!(
        parse(&["--signal", "stop=/nonexistent/x.pid"]),
        Err(CliError::Other(m)) if m.contains("could not read pid file")
    ));
}

#[test]
fn config_subcommands() {
    assert_eq!(
        parse(&["config", "check", "a.conf"]),
        Ok(Command::ConfigCheck("a.conf".into()))
    );
    assert_eq!(
        parse(&["config", "print"]),
        Ok(Command::ConfigPrint {
            file: None,
            json: false
        })
    );
    assert_eq!(
        parse(&["config", "print", "--json", "b.toml"]),
        Ok(Command::ConfigPrint {
            file: Some("b.toml".into()),
            json: true
        })
    );
    assert!(parse(&["config", "check"]).is_err());
    assert!(parse(&["config", "frob"]).is_err());
    assert!(parse(&["config"]).is_err());
}

#[test]
fn client_tools_pass_through() {
    assert_eq!(
        parse(&["pub", "a", "b", "--count", "2"]),
        Ok(Command::Tool(vec![
            "pub".into(),
            "a".into(),
            "b".into(),
            "--count".into(),
            "2".into()
        ]))
    );
    assert!(matches!(parse(&["healthcheck"]), Ok(Command::Tool(_))));
}
