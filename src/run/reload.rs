//! What a reload does beyond installing the new configuration: nats-server's
//! `Reloaded: <option> = <value>` lines, the authorization re-check of open clients,
//! and closing connections above a lowered `max_connections`.

use std::sync::Arc;

use crate::config::duration::format_duration;
use crate::config::Config;
use crate::error::CloseReason;
use crate::protocol::encode;
use crate::server::ServerShared;

/// nats-server's "is an auth change" options: users, tokens, accounts, operator.
pub(super) fn auth_changed(old: &Config, new: &Config) -> bool {
    let map = |c: &Config| c.tls.as_ref().is_some_and(|t| t.verify_and_map);
    old.authorization != new.authorization
        || old.accounts != new.accounts
        || old.no_auth_user != new.no_auth_user
        || old.operator != new.operator
        || old.resolver_preload != new.resolver_preload
        || map(old) != map(new)
}

/// One `Reloaded: ...` line per changed option, in nats-server's order and wording
/// (options nats-server refuses to reload, and tern applies, follow in the same form).
pub(super) fn log_changes(old: &Config, new: &Config) {
    let mut lines: Vec<String> = Vec::new();
    // `name = value` when the field changed; `value` is shown with Display or `$show`.
    macro_rules! changed {
        ($name:literal, $($f:ident).+) => {
            if old.$($f).+ != new.$($f).+ {
                lines.push(format!("{} = {}", $name, new.$($f).+));
            }
        };
        ($name:literal, $($f:ident).+, $show:expr) => {
            if old.$($f).+ != new.$($f).+ {
                lines.push(format!("{} = {}", $name, ($show)(&new.$($f).+)));
            }
        };
    }
    let dur = |d: &std::time::Duration| format_duration(*d);
    let (oa, na) = (&old.authorization, &new.authorization);
    changed!("trace", logging.trace);
    changed!("debug", logging.debug);
    changed!("logtime", logging.logtime);
    changed!("max_connections", max_connections);
    if oa.users != na.users || oa.user != na.user || oa.password != na.password {
        lines.push("authorization users".into());
    }
    if oa.token != na.token {
        lines.push("authorization token".into());
    }
    if old.accounts != new.accounts {
        lines.push("accounts".into());
    }
    changed!("ping_interval", ping_interval, dur);
    changed!("ping_max", ping_max);
    if oa.timeout != na.timeout {
        let secs = new.auth_timeout().as_secs_f64();
        lines.push(format!("authorization timeout = {secs}"));
    }
    changed!("max_control_line", max_control_line);
    changed!("max_payload", max_payload);
    changed!("write_deadline", write_deadline, dur);
    changed!("max_traced_msg_len", max_traced_msg_len);
    changed!("no_auth_user", no_auth_user, |v: &Option<String>| {
        v.clone().unwrap_or_default()
    });
    changed!("tls", tls, |v: &Option<crate::config::TlsConfig>| {
        if v.is_some() { "enabled" } else { "disabled" }.to_string()
    });
    // Reloadable in tern only.
    changed!("max_pending", max_pending);
    changed!("max_subscriptions", max_subscriptions);
    changed!("logfile_size_limit", logging.log_size_limit);
    changed!("logfile_max_num", logging.log_max_num);
    changed!("lame_duck_duration", lame_duck_duration, dur);
    changed!("lame_duck_grace_period", lame_duck_grace_period, dur);
    changed!("no_header_support", no_header_support);
    for l in lines {
        tracing::info!("Reloaded: {l}");
    }
}

/// A lowered `max_connections`: as nats-server, close clients until the count fits,
/// each with `-ERR 'maximum connections exceeded'` (the newest go first).
pub(super) fn enforce_max_connections(shared: &Arc<ServerShared>, old: &Config, new: &Config) {
    let limit = new.max_connections;
    if limit == old.max_connections || limit <= 0 {
        return;
    }
    let mut cids: Vec<u64> = shared.clients.iter().map(|c| *c.key()).collect();
    let Some(excess) = cids.len().checked_sub(limit as usize).filter(|n| *n > 0) else {
        return;
    };
    cids.sort_unstable_by(|a, b| b.cmp(a));
    let mut closed = 0;
    for cid in cids.into_iter().take(excess) {
        let Some(c) = shared.clients.get(&cid).map(|c| c.value().clone()) else {
            continue;
        };
        let mut b = Vec::new();
        encode::write_err(&mut b, "maximum connections exceeded");
        c.out.push(&b);
        c.close_from_server(CloseReason::MaxConnectionsExceeded);
        closed += 1;
    }
    tracing::info!("Closed {closed} connections to fall within max_connections");
}
