//! Operator mode: CONNECT checks for user JWTs against the trusted operator and the
//! accounts of `resolver: MEMORY` + `resolver_preload`.
//!
//! Checks and their order follow nats-server's processClientOrLeafAuthentication for
//! trusted keys: a user JWT is required; it must decode and verify, be within its
//! validity window; its account must be known, issued by a trusted key and not expired;
//! the user's issuer must be the account or one of its signing keys; unless it is a
//! bearer token, `sig` must be the user key's signature of the INFO nonce; and the user
//! must not be revoked. Every failure is the same `Authorization Violation`; the reason
//! goes to the debug log, with nats-server's wording.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::jwt::{self, Claims, JwtAccount, Operator, UserNats};
use super::permissions::Permissions;
use super::Authed;
use crate::protocol::info::ConnectInfo;

/// Why a revoked user is refused (nats-server's debug line).
pub const REVOKED: &str = "User authentication revoked";

/// Limits a JWT user's connection gets on top of the server's; -1 = none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JwtLimits {
    /// Smallest of the user's and the account's `payload` (the server's max_payload
    /// still applies when lower).
    pub max_payload: i64,
    /// Smallest of the user's and the account's `subs`.
    pub max_subs: i64,
    /// The account's `conn`: active connections of the account.
    pub account_conns: i64,
    /// When the user JWT (or, if sooner, its account) expires; 0 = never.
    pub expires: i64,
}

/// nats-server's minLimit: -1 (any negative here) is "no limit", otherwise the smaller
/// limit wins (0 is a real limit).
pub fn min_limit(a: i64, b: i64) -> i64 {
    match (a < 0, b < 0) {
        (true, _) => b,
        (false, true) => a,
        (false, false) => a.min(b),
    }
}

#[derive(Debug)]
pub struct OperatorMode {
    operator: Operator,
    accounts: HashMap<String, Arc<JwtAccount>>,
}

impl OperatorMode {
    /// `operator` is the conf value (path or inline JWT); `preload` maps account public
    /// keys to account JWTs. Bad JWTs are configuration errors, as in nats-server.
    pub fn build(
        operator: &str,
        resolver: Option<&str>,
        preload: &BTreeMap<String, String>,
        system_account: Option<&str>,
    ) -> Result<OperatorMode, String> {
        let op = Operator::load(operator)?;
        match resolver {
            Some(r) if r.eq_ignore_ascii_case("MEMORY") || r.eq_ignore_ascii_case("MEM") => {}
            Some(r) => return Err(format!("resolver {r:?} is not supported (only MEMORY)")),
            None => return Err("operator mode requires a resolver (resolver: MEMORY)".into()),
        }
        let mut accounts = HashMap::new();
        for (key, token) in preload {
            let acc = JwtAccount::from_jwt(jwt::undecorate(token))
                .map_err(|e| format!("preload account error for {key:?}: {e}"))?;
            if &acc.name != key {
                return Err(format!(
                    "preload account error for {key:?}: subject {:?} does not match",
                    acc.name
                ));
            }
            accounts.insert(key.clone(), Arc::new(acc));
        }
        if let Some(sys) = system_account.filter(|s| !s.is_empty()) {
            if !jwt::is_public_key(sys, 'A') {
                return Err(format!(
                    "system_account {sys:?} is not an account public key"
                ));
            }
        }
        Ok(OperatorMode {
            operator: op,
            accounts,
        })
    }

    /// The operator's name (for the startup log).
    pub fn operator_name(&self) -> &str {
        &self.operator.name
    }

    /// Fails with [`REVOKED`] exactly when the user JWT is on the account's revocation list.
    pub fn authenticate(&self, c: &ConnectInfo, nonce: &[u8]) -> Result<Authed, String> {
        let Some(token) = c.jwt.as_deref().filter(|j| !j.is_empty()) else {
            return Err("Authentication requires a user JWT".into());
        };
        let juc: Claims<UserNats> =
            jwt::decode(token, "user").map_err(|e| format!("User JWT not valid: {e}"))?;
        let now = jwt::now_unix();
        if !jwt::is_public_key(&juc.sub, 'U') {
            return Err("User JWT not valid: subject is not a user public key".into());
        }
        if !juc.time_valid(now) {
            return Err("User JWT no longer valid: claim is expired or not yet valid".into());
        }
        let account_key = if juc.nats.issuer_account.is_empty() {
            &juc.iss
        } else {
            &juc.nats.issuer_account
        };
        let Some(acc) = self.accounts.get(account_key) else {
            return Err(format!(
                "Account JWT lookup error: account {account_key} not found"
            ));
        };
        if !self.operator.trusted.contains(&acc.issuer) {
            return Err("Account JWT not signed by trusted operator".into());
        }
        if juc.iss != acc.name && !acc.signing_keys.contains(&juc.iss) {
            return Err("User JWT issuer is not known".into());
        }
        if acc.exp > 0 && now > acc.exp {
            return Err("Account JWT has expired".into());
        }
        if !juc.nats.bearer_token {
            let sig = c.sig.as_deref().unwrap_or("");
            if sig.is_empty() {
                return Err("Signature missing".into());
            }
            if !super::verify_sig(&juc.sub, sig, nonce) {
                return Err("Signature not verified".into());
            }
        }
        if acc.revoked(&juc.sub, juc.iat) {
            return Err(REVOKED.into());
        }
        let perms = if juc.nats.perms.to_conf().is_some() {
            juc.nats.perms.to_conf()
        } else {
            acc.default_permissions.as_ref().and_then(|p| p.to_conf())
        };
        let perms = perms
            .map(|v| Permissions::parse(&v).map(Arc::new))
            .transpose()
            .map_err(|e| format!("User JWT permissions not valid: {e}"))?;
        let expires = match (juc.exp > 0, acc.exp > 0) {
            (true, true) => juc.exp.min(acc.exp),
            (true, false) => juc.exp,
            (false, true) => acc.exp,
            (false, false) => 0,
        };
        // nats-server names the user `nkey:KEY` when CONNECT also carried `nkey`, else
        // `jwt:USER` (what clients with a .creds file send).
        let who = match c.nkey.as_deref().filter(|k| !k.is_empty()) {
            Some(k) => format!("nkey:{k}"),
            None => format!("jwt:{}", juc.sub),
        };
        let log_tag = if acc.claim_name.is_empty() {
            format!("{}/{who}", acc.name)
        } else {
            format!("{}/{}/{who}", acc.name, acc.claim_name)
        };
        Ok(Authed {
            log_tag: Some(log_tag),
            user: juc.sub.clone(),
            perms,
            account: Some(acc.name.clone()),
            jwt: Some(JwtLimits {
                max_payload: min_limit(juc.nats.payload, acc.limits.payload),
                max_subs: min_limit(juc.nats.subs, acc.limits.subs),
                account_conns: acc.limits.conn,
                expires,
            }),
            secret: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_combine() {
        assert_eq!(min_limit(-1, -1), -1);
        assert_eq!(min_limit(5, -1), 5);
        assert_eq!(min_limit(-1, 7), 7);
        assert_eq!(min_limit(5, 7), 5);
        assert_eq!(min_limit(0, -1), 0);
    }
}
