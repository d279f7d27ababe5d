//! Per-connection limits from operator mode: the JWT user's and account's `subs`, and
//! the account's active connection count (`conn`).

use super::Close;
use super::Conn;
use crate::error::CloseReason;

impl Conn {
    /// The subscription limit: the server's `max_subscriptions` (0 = none) and the
    /// JWT user's and account's `subs`; `None` = unlimited.
    pub(super) fn max_subs(&self) -> Option<usize> {
        let server = if self.cfg.max_subscriptions > 0 {
            self.cfg.max_subscriptions as i64
        } else {
            -1
        };
        let jwt = self.jwt.map_or(-1, |j| j.max_subs);
        let m = crate::auth::operator::min_limit(jwt, server);
        (m >= 0).then_some(m as usize)
    }

    /// Takes this connection out of its JWT account's connection count.
    pub(super) fn release_account(&mut self) {
        if let Some(acc) = self.jwt_account.take() {
            if let Some(mut n) = self.server.account_conns.get_mut(&acc) {
                *n -= 1;
            }
        }
    }

    /// Binds the connection to its JWT account, refusing it when the account's `conn`
    /// limit is reached (nats-server: `maximum account active connections exceeded`).
    pub(super) fn bind_account(&mut self, account: String, limit: i64) -> Result<(), Close> {
        let mut n = self
            .server
            .account_conns
            .entry(account.clone())
            .or_insert(0);
        if limit >= 0 && *n >= limit {
            drop(n);
            // nats-server logs this line twice (registerWithAccount and its caller).
            for _ in 0..2 {
                tracing::error!(
                    "{} - cid:{} - maximum account active connections exceeded",
                    self.client.addr,
                    self.client.cid
                );
            }
            return Err(Close::new(
                CloseReason::MaxAccountConnectionsExceeded,
                Some("maximum account active connections exceeded"),
            ));
        }
        *n += 1;
        drop(n);
        self.jwt_account = Some(account);
        Ok(())
    }

    /// Applies operator-mode results of CONNECT: the account binding (refused over the
    /// account's `conn` limit) and the JWT limits. A repeated CONNECT re-binds.
    pub(super) fn bind_jwt(&mut self, authed: &crate::auth::Authed) -> Result<(), Close> {
        self.release_account();
        if let Some(acc) = authed.account.clone() {
            let limit = authed.jwt.map_or(-1, |j| j.account_conns);
            self.bind_account(acc, limit)?;
        }
        self.jwt = authed.jwt;
        Ok(())
    }

    /// A JWT limit of 0 subscriptions (a claim left unset is 0): nats-server closes the
    /// connection right after CONNECT.
    pub(super) fn check_zero_subs(&self) -> Result<(), Close> {
        if self.max_subs() != Some(0) {
            return Ok(());
        }
        tracing::error!(
            "{} - cid:{} - maximum subscriptions exceeded",
            self.client.addr,
            self.client.cid
        );
        Err(Close::new(
            CloseReason::MaxSubscriptionsExceeded,
            Some("maximum subscriptions exceeded"),
        ))
    }
}
