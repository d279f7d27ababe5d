//! The `tern` binary: nats-server's command line and conf files, then `tern::run`.
//! Errors at startup exit non-zero with one clear line per problem.

use std::process::ExitCode;

use tern::cli::{self, CliError, Command};

fn main() -> ExitCode {
    let cmd = match cli::parse_args(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tern: {e}");
            if matches!(e, CliError::UnknownFlag(_)) {
                eprintln!("{}", cli::usage());
            }
            return ExitCode::from(1);
        }
    };
    match cmd {
        Command::Help => {
            println!("{}", cli::usage());
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("{}", cli::version_string());
            ExitCode::SUCCESS
        }
        Command::ConfigCheck(_) | Command::ConfigPrint { .. } | Command::TestConfig(_) => {
            exit(tern::conf::run_config_subcommand(&cmd))
        }
        Command::Signal { command, pid } => {
            match tern::run::send_signal(&command, pid.as_deref()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("tern: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Tool(args) => exit(tern::tools::main(args)),
        Command::Cluster(args) => match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => exit(rt.block_on(tern::admin::cli::run(args))),
            Err(e) => {
                eprintln!("tern: could not start the runtime: {e}");
                ExitCode::from(1)
            }
        },
        Command::Run(args) => run(args),
    }
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn run(args: cli::RunArgs) -> ExitCode {
    let loaded = match tern::conf::load(args.config_file.as_deref(), &args.overrides) {
        Ok(l) => l,
        Err(errors) => {
            for e in errors {
                eprintln!("tern: {e}");
            }
            return ExitCode::from(1);
        }
    };
    let mut config = loaded.config;
    config.config_file = args.config_file.clone();
    if let Err(e) = tern::logging::init_with(&config.logging) {
        eprintln!("tern: could not open log file: {e}");
        return ExitCode::from(1);
    }
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let reload: tern::run::Reloader = Box::new(move || {
        tern::conf::load(args.config_file.as_deref(), &args.overrides)
            .map(|l| l.config)
            .map_err(|errs| {
                errs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
    });
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tern::logging::fatal(&format!("could not start the runtime: {e}"));
            return ExitCode::from(1);
        }
    };
    exit(rt.block_on(tern::run::run(config, reload)))
}
