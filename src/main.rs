//! The `tern` binary: nats-server's command line, then `tern::Server`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut config = tern::Config::default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].trim_start_matches('-');
        let val = args.get(i + 1).cloned().unwrap_or_default();
        match a {
            "a" | "addr" => {
                config.host = val;
                i += 1;
            }
            "p" | "port" => {
                config.port = val.parse().unwrap_or(4222);
                i += 1;
            }
            "m" | "http_port" => {
                config.http_port = val.parse().ok();
                i += 1;
            }
            "user" => {
                config.authorization.user = Some(val);
                i += 1;
            }
            "pass" => {
                config.authorization.password = Some(val);
                i += 1;
            }
            "auth" => {
                config.authorization.token = Some(val);
                i += 1;
            }
            "D" => config.logging.debug = true,
            "V" | "DV" => config.logging.trace = true,
            _ => {}
        }
        i += 1;
    }
    let _ = tern::logging::init(config.logging.debug, config.logging.trace, true, None);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        match tern::Server::start(config).await {
            Ok(h) => {
                tokio::select! {
                    _ = h.wait() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
                h.shutdown().await;
                ExitCode::SUCCESS
            }
            Err(e) => {
                tern::logging::fatal(&e.to_string());
                ExitCode::FAILURE
            }
        }
    })
}
