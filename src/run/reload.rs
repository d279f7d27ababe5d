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
    let mut put = |changed: bool, line: String| {
        if changed {
            lines.push(line);
        }
    };
    let (o, n) = (&old.logging, &new.logging);
    put(o.trace != n.trace, format!("trace = {}", n.trace));
    put(o.debug != n.debug, format!("debug = {}", n.debug));
    put(o.logtime != n.logtime, format!("logtime = {}", n.logtime));
    put(
        old.max_connections != new.max_connections,
        format!("max_connections = {}", new.max_connections),
    );
    let (oa, na) = (&old.authorization, &new.authorization);
    put(
        oa.users != na.users || oa.user != na.user || oa.password != na.password,
        "authorization users".into(),
    );
    put(oa.token != na.token, "authorization token".into());
    put(old.accounts != new.accounts, "accounts".into());
    put(
        old.ping_interval != new.ping_interval,
        format!("ping_interval = {}", format_duration(new.ping_interval)),
    );
    put(
        old.ping_max != new.ping_max,
        format!("ping_max = {}", new.ping_max),
    );
    put(
        oa.timeout != na.timeout,
        format!(
            "authorization timeout = {}",
            new.auth_timeout().as_secs_f64()
        ),
    );
    put(
        old.max_control_line != new.max_control_line,
        format!("max_control_line = {}", new.max_control_line),
    );
    put(
        old.max_payload != new.max_payload,
        format!("max_payload = {}", new.max_payload),
    );
    put(
        old.write_deadline != new.write_deadline,
        format!("write_deadline = {}", format_duration(new.write_deadline)),
    );
    put(
        old.max_traced_msg_len != new.max_traced_msg_len,
        format!("max_traced_msg_len = {}", new.max_traced_msg_len),
    );
    put(
        old.no_auth_user != new.no_auth_user,
        format!(
            "no_auth_user = {}",
            new.no_auth_user.as_deref().unwrap_or("")
        ),
    );
    let tls = if new.tls.is_some() {
        "enabled"
    } else {
        "disabled"
    };
    put(old.tls != new.tls, format!("tls = {tls}"));
    // Reloadable in tern only.
    put(
        old.max_pending != new.max_pending,
        format!("max_pending = {}", new.max_pending),
    );
    put(
        old.max_subscriptions != new.max_subscriptions,
        format!("max_subscriptions = {}", new.max_subscriptions),
    );
    put(
        o.log_size_limit != n.log_size_limit,
        format!("logfile_size_limit = {}", n.log_size_limit),
    );
    put(
        o.log_max_num != n.log_max_num,
        format!("logfile_max_num = {}", n.log_max_num),
    );
    put(
        old.lame_duck_duration != new.lame_duck_duration,
        format!(
            "lame_duck_duration = {}",
            format_duration(new.lame_duck_duration)
        ),
    );
    put(
        old.lame_duck_grace_period != new.lame_duck_grace_period,
        format!(
            "lame_duck_grace_period = {}",
            format_duration(new.lame_duck_grace_period)
        ),
    );
    put(
        old.no_header_support != new.no_header_support,
        format!("no_header_support = {}", new.no_header_support),
    );
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
