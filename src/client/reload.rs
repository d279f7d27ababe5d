//! A reload that changed authorization, applied to a client that is already connected,
//! as nats-server's reloadAuthorization does: a client whose user is gone or now in
//! another account is closed without an error; one whose credentials no longer pass
//! gets `Authorization Violation` (`User Authentication Revoked` for a revoked JWT);
//! the others get the new permissions, and lose the subscriptions those no longer
//! allow (each with a `-ERR` and a log line), and in operator mode the reloaded
//! account's `payload` and `subs` limits.

use std::sync::Arc;

use super::{Close, Conn};
use crate::account::GLOBAL_ACCOUNT;
use crate::auth::operator::JwtLimits;
use crate::auth::permissions::{self, ConnPerms};
use crate::client::{remove_local_sub, Subscription};
use crate::error::CloseReason;

impl Conn {
    /// Runs in the read loop when the server asked for it (`request_auth_recheck`).
    pub(super) fn recheck_auth(&mut self) -> Result<(), Close> {
        let sec = self.server.security();
        if Arc::ptr_eq(&sec, &self.sec) {
            return Ok(());
        }
        self.sec = sec;
        if !self.connected {
            // CONNECT has not come yet: it is checked against the new settings.
            self.auth_required = self.sec.auth.required();
            return Ok(());
        }
        let auth = &self.sec.auth;
        if auth.moved(&self.opts, &self.account.name) {
            tracing::debug!(
                "{}user no longer configured or moved to another account",
                self.who()
            );
            return Err(Close::new(CloseReason::ClientClosed, None));
        }
        let authed = match auth.authenticate_known(
            &self.opts,
            self.nonce.as_bytes(),
            &self.cert_names,
            self.proven_secret.as_deref(),
        ) {
            Ok(a) => a,
            Err(crate::auth::Denied::Revoked) => {
                // nats-server's answer when an account update revokes an open client.
                tracing::debug!("{}User Authentication Revoked", self.who());
                return Err(Close::new(
                    CloseReason::CredentialsRevoked,
                    Some("User Authentication Revoked"),
                ));
            }
            Err(denied) => {
                tracing::error!("{}authentication error{}", self.who(), denied.log_suffix());
                return Err(Close::new(
                    CloseReason::AuthenticationViolation,
                    Some("Authorization Violation"),
                ));
            }
        };
        let account = authed.account.as_deref().unwrap_or(GLOBAL_ACCOUNT);
        if account != self.account.name {
            // `no_auth_user` or a certificate now maps to another account.
            return Err(Close::new(CloseReason::ClientClosed, None));
        }
        self.proven_secret = authed.secret;
        if let (Some(cur), Some(new)) = (&mut self.jwt, authed.jwt) {
            if apply_jwt_limits(cur, new) {
                self.report_subs_at_limit();
            }
        }
        self.perms = match authed.perms {
            Some(p) => Some(ConnPerms::new(p, &self.client.perm_hook)),
            None => {
                ConnPerms::clear(&self.client.perm_hook);
                None
            }
        };
        self.remove_unauthorized_subs();
        Ok(())
    }

    /// A reloaded account JWT that changed the limits leaves a client at or over its
    /// new `subs`: nats-server reports it (twice: two reload paths apply the limits)
    /// and keeps its subscriptions; new ones are refused.
    fn report_subs_at_limit(&mut self) {
        let Some(max) = self.max_subs() else {
            return;
        };
        if self.client.subs.lock().len() < max {
            return;
        }
        for _ in 0..2 {
            tracing::error!("{}maximum subscriptions exceeded", self.who());
            self.send_err("maximum subscriptions exceeded");
        }
        self.pcd.add(&self.client);
    }

    /// nats-server keeps a queue subscription that either the plain or the queue
    /// permission still allows.
    fn remove_unauthorized_subs(&mut self) {
        let Some(perms) = &mut self.perms else {
            return;
        };
        let subs: Vec<Arc<Subscription>> = self.client.subs.lock().values().cloned().collect();
        let mut removed = Vec::new();
        for s in subs {
            let allowed = perms.can_subscribe(&s.subject, None)
                || s.queue
                    .as_deref()
                    .is_some_and(|q| perms.can_subscribe(&s.subject, Some(q)));
            if !allowed {
                removed.push(s);
            }
        }
        if removed.is_empty() {
            return;
        }
        let who = match (&self.opts.nkey, &self.opts.user) {
            (Some(k), _) if !k.is_empty() => {
                format!("Nkey {}", permissions::go_quote(k.as_bytes()))
            }
            (_, Some(u)) if !u.is_empty() => {
                format!("User {}", permissions::go_quote(u.as_bytes()))
            }
            _ => "User \"N/A\"".to_string(),
        };
        removed.sort_by(|a, b| a.sid.cmp(&b.sid));
        for s in removed {
            let gone = self.client.subs.lock().remove(&s.sid);
            if let Some(s) = gone {
                remove_local_sub(&self.server, &s);
                self.trace_delsub(&s.sid);
            }
            let mut what = permissions::go_quote(&s.subject);
            if let Some(q) = &s.queue {
                what = format!("{what} using queue {}", permissions::go_quote(q));
            }
            let sid = permissions::go_quote(&s.sid);
            self.send_err(&format!(
                "Permissions Violation for Subscription to {what} (sid {sid})"
            ));
            tracing::info!("Removed sub {what} (sid {sid}) for {who} - not authorized");
        }
        self.interest_changed = true;
        self.pcd.add(&self.client);
    }
}

/// The payload, subscription and connection limits of a reloaded account JWT; the
/// expiry stays the one armed at CONNECT.
fn apply_jwt_limits(cur: &mut JwtLimits, new: JwtLimits) -> bool {
    let changed = (cur.max_payload, cur.max_subs, cur.account_conns)
        != (new.max_payload, new.max_subs, new.account_conns);
    cur.max_payload = new.max_payload;
    cur.max_subs = new.max_subs;
    cur.account_conns = new.account_conns;
    changed
}
