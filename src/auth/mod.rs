//! Client authentication: token, single user, `users` (plain or bcrypt passwords),
//! nkey users (signed nonce), `no_auth_user`, and TLS certificate mapping
//! (`verify_and_map`). Built once per configuration as an [`Authenticator`].
//!
//! Order and outcomes follow nats-server's processClientOrLeafAuthentication: an nkey in
//! CONNECT is looked up among nkey users first, then the users map (with `no_auth_user`
//! standing in for a CONNECT without a user, or the certificate identity with
//! `verify_and_map`), then the token, then the single user. Secret comparisons are
//! constant time; bcrypt hashes (`$2a$`, `$2b$`, `$2x$`, `$2y$`) are verified with bcrypt.
//! Secrets are never logged: a failure reports only the user name or nkey.

pub mod jwt;
pub mod operator;
pub mod permissions;

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use subtle::ConstantTimeEq;

use crate::config::Config;
use crate::protocol::info::ConnectInfo;
use permissions::Permissions;

fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// nats-server's `^\$2[abxy]\$\d{2}\$` test for a bcrypt hash.
fn is_bcrypt(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 7
        && b.starts_with(b"$2")
        && matches!(b[2], b'a' | b'b' | b'x' | b'y')
        && b[3] == b'$'
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$'
}

/// nats-server comparePasswords: bcrypt when the configured secret is a hash.
fn compare_secret(configured: &str, given: &str) -> bool {
    if is_bcrypt(configured) {
        return bcrypt::verify(given, configured).unwrap_or(false);
    }
    ct_eq(configured, given)
}

#[derive(Debug)]
struct UserEntry {
    password: String,
    perms: Option<Arc<Permissions>>,
    /// The `accounts` entry the user is configured in; None = `$G`.
    account: Option<String>,
}

/// Who a connection authenticated as.
#[derive(Debug, Clone, Default)]
pub struct Authed {
    /// User name (or nkey) for /connz and logs; empty without auth.
    pub user: String,
    /// `None` = no permission checks at all.
    pub perms: Option<Arc<Permissions>>,
    /// The account (public nkey in operator mode) the user belongs to; `None` = the
    /// global account.
    pub account: Option<String>,
    /// Limits from the user and account JWTs (operator mode only).
    pub jwt: Option<operator::JwtLimits>,
    /// Identity in violation log lines when it is not `$G/user:NAME`
    /// (operator mode: `ACCOUNT/ACCOUNT_NAME/nkey:USER`).
    pub log_tag: Option<String>,
    /// The configured password or token (as configured: plain or a bcrypt hash) the
    /// client matched; lets a reload skip re-checking an unchanged entry.
    pub secret: Option<String>,
}

/// Why authentication failed, as nats-server's log line names it.
#[derive(Debug, Clone, PartialEq)]
pub enum Denied {
    Nkey(String),
    User(String),
    Anonymous,
    /// Operator mode: the user JWT is revoked by its account.
    Revoked,
}

impl Denied {
    /// The text after `authentication error`.
    pub fn log_suffix(&self) -> String {
        match self {
            Denied::Nkey(k) => format!(" - Nkey {}", permissions::go_quote(k.as_bytes())),
            Denied::User(u) => format!(" - User {}", permissions::go_quote(u.as_bytes())),
            Denied::Anonymous | Denied::Revoked => String::new(),
        }
    }
}

/// The authentication configuration of a server, ready for CONNECT checks.
#[derive(Debug, Default)]
pub struct Authenticator {
    users: HashMap<String, UserEntry>,
    /// nkey -> (permissions, account).
    nkeys: HashMap<String, (Option<Arc<Permissions>>, Option<String>)>,
    token: Option<String>,
    single: Option<(String, String)>,
    no_auth_user: Option<String>,
    tls_map: bool,
    /// Operator mode (`operator` + `resolver: MEMORY`): only user JWTs are accepted.
    operator: Option<operator::OperatorMode>,
    /// Warnings about the settings, logged once by whoever installs this (the config
    /// check builds one too, and must not log them a second time).
    warnings: Vec<String>,
}

fn parse_perms(v: Option<&serde_json::Value>) -> Result<Option<Arc<Permissions>>, String> {
    v.map(|v| Permissions::parse(v).map(Arc::new)).transpose()
}

impl Authenticator {
    /// Logs the warnings about these settings (once per start or reload).
    pub fn log_warnings(&self) {
        for w in &self.warnings {
            tracing::warn!("{w}");
        }
    }

    /// Builds from the effective configuration; errors are configuration errors.
    pub fn build(cfg: &Config) -> Result<Authenticator, String> {
        let a = &cfg.authorization;
        if let Some(op) = &cfg.operator {
            if a.required() {
                return Err("operator mode does not allow an authorization block".into());
            }
            let om = operator::OperatorMode::build(
                op,
                cfg.resolver.as_deref(),
                &cfg.resolver_preload,
                cfg.system_account.as_deref(),
            )?;
            return Ok(Authenticator {
                operator: Some(om),
                ..Default::default()
            });
        }
        let default_perms = parse_perms(a.default_permissions.as_ref())?;
        let mut out = Authenticator {
            token: a.token.clone(),
            single: a
                .user
                .clone()
                .map(|u| (u, a.password.clone().unwrap_or_default())),
            no_auth_user: cfg.no_auth_user.clone(),
            tls_map: cfg.tls.as_ref().is_some_and(|t| t.verify_and_map),
            ..Default::default()
        };
        let account_users = cfg
            .accounts
            .iter()
            .flat_map(|acc| acc.users.iter().map(move |u| (u, Some(acc.name.clone()))));
        for (u, account) in a.users.iter().map(|u| (u, None)).chain(account_users) {
            let perms = match parse_perms(u.permissions.as_ref())? {
                Some(p) => Some(p),
                None => default_perms.clone(),
            };
            if let Some(nkey) = &u.nkey {
                if nkeys::KeyPair::from_public_key(nkey).is_err() || !nkey.starts_with('U') {
                    return Err(format!("Not a valid public nkey for a user: {nkey}"));
                }
                out.nkeys.insert(nkey.clone(), (perms, account));
            } else if let Some(name) = &u.user {
                let password = u.password.clone().unwrap_or_default();
                out.users.insert(
                    name.clone(),
                    UserEntry {
                        password,
                        perms,
                        account,
                    },
                );
            }
        }
        let plaintext = out.users.values().any(|u| !is_bcrypt(&u.password))
            || out.single.as_ref().is_some_and(|(_, p)| !is_bcrypt(p));
        if plaintext {
            out.warnings
                .push("Plaintext passwords detected, use nkeys or bcrypt".into());
        }
        if let Some(n) = &out.no_auth_user {
            if !out.users.contains_key(n) {
                // Not among the `authorization` or account users: start anyway, as if
                // no_auth_user were not set.
                out.warnings.push(format!(
                    "no_auth_user \"{n}\" is not a configured user, ignoring it"
                ));
                out.no_auth_user = None;
            }
        }
        Ok(out)
    }

    /// nats-server's clientHasMovedToDifferentAccount: a client that named a user or an
    /// nkey whose entry is gone after a reload, or now sits in another account than
    /// `account`, is closed without an error (it reconnects into the right place).
    pub fn moved(&self, c: &ConnectInfo, account: &str) -> bool {
        if self.operator.is_some() {
            return false;
        }
        let elsewhere =
            |a: &Option<String>| a.as_deref().unwrap_or(crate::account::GLOBAL_ACCOUNT) != account;
        if let Some(k) = c.nkey.as_deref().filter(|k| !k.is_empty()) {
            return self.nkeys.get(k).is_none_or(|(_, a)| elsewhere(a));
        }
        let Some(user) = c.user.as_deref().filter(|u| !u.is_empty()) else {
            return false;
        };
        if let Some(e) = self.users.get(user) {
            return elsewhere(&e.account);
        }
        // nats-server also closes single-user (`authorization { user }`) clients on
        // every authorization change; tern keeps them while the user is the same.
        self.single.as_ref().is_none_or(|(u, _)| u != user)
            || account != crate::account::GLOBAL_ACCOUNT
    }

    /// Whether any client authentication is configured (CONNECT is checked).
    pub fn configured(&self) -> bool {
        self.operator.is_some()
            || self.token.is_some()
            || self.single.is_some()
            || !self.users.is_empty()
            || !self.nkeys.is_empty()
    }

    /// Whether clients must present credentials: INFO `auth_required`, the auth timer,
    /// and ops before CONNECT refused. `no_auth_user` lifts it.
    pub fn required(&self) -> bool {
        self.configured() && self.no_auth_user.is_none()
    }

    /// INFO carries a nonce only when nkey users are configured or in operator mode.
    pub fn needs_nonce(&self) -> bool {
        !self.nkeys.is_empty() || self.operator.is_some()
    }

    /// Operator mode is on: users are JWTs bound to accounts.
    pub fn operator_mode(&self) -> bool {
        self.operator.is_some()
    }

    /// Checks CONNECT credentials. `nonce` is what INFO carried; `cert_names` are the
    /// client certificate's identities (emails, DNS names, URIs, subject DN) for
    /// `verify_and_map`.
    pub fn authenticate(
        &self,
        c: &ConnectInfo,
        nonce: &[u8],
        cert_names: &[String],
    ) -> Result<Authed, Denied> {
        self.authenticate_known(c, nonce, cert_names, None)
    }

    /// [`Self::authenticate`] for a client checked again after a reload: `known` is the
    /// configured secret it proved it knows at CONNECT ([`Authed::secret`]). While that
    /// entry is unchanged it is not compared again (a bcrypt check costs ~0.1 s, and a
    /// reload re-checks every connection).
    pub fn authenticate_known(
        &self,
        c: &ConnectInfo,
        nonce: &[u8],
        cert_names: &[String],
        known: Option<&str>,
    ) -> Result<Authed, Denied> {
        let matches = |configured: &str, given: &str| {
            known == Some(configured) || compare_secret(configured, given)
        };
        let denied = || match (&c.nkey, &c.user) {
            (Some(k), _) if !k.is_empty() => Denied::Nkey(k.clone()),
            (_, Some(u)) if !u.is_empty() => Denied::User(u.clone()),
            _ => Denied::Anonymous,
        };
        if c.account.is_some() || c.new_account.is_some() {
            return Err(denied());
        }
        if let Some(om) = &self.operator {
            // nats-server logs only "authentication error" with trusted keys; the reason
            // is a debug line.
            return om.authenticate(c, nonce).map_err(|why| {
                tracing::debug!("{why}");
                if why == operator::REVOKED {
                    Denied::Revoked
                } else {
                    Denied::Anonymous
                }
            });
        }
        if !self.configured() {
            return Ok(Authed {
                user: c.user.clone().unwrap_or_default(),
                ..Default::default()
            });
        }
        let nkey = c.nkey.as_deref().filter(|k| !k.is_empty());
        if let (false, Some(k)) = (self.nkeys.is_empty(), nkey) {
            let Some((perms, account)) = self.nkeys.get(k) else {
                return Err(denied());
            };
            if !verify_sig(k, c.sig.as_deref().unwrap_or(""), nonce) {
                tracing::debug!("Signature not verified");
                return Err(denied());
            }
            return Ok(Authed {
                user: k.to_string(),
                perms: perms.clone(),
                account: account.clone(),
                ..Default::default()
            });
        }
        if !self.users.is_empty() {
            let mut name = c.user.clone().filter(|u| !u.is_empty());
            let mut password = c.pass.clone().unwrap_or_default();
            if self.tls_map {
                let Some(mapped) = cert_names.iter().find(|n| self.users.contains_key(*n)) else {
                    return Err(denied());
                };
                name = Some(mapped.clone());
            } else if name.is_none() {
                if let Some(n) = &self.no_auth_user {
                    name = Some(n.clone());
                    password = self
                        .users
                        .get(n)
                        .map(|u| u.password.clone())
                        .unwrap_or_default();
                }
            }
            if let Some(name) = name {
                let Some(entry) = self.users.get(&name) else {
                    return Err(denied());
                };
                if !matches(&entry.password, &password) {
                    return Err(denied());
                }
                return Ok(Authed {
                    user: name,
                    perms: entry.perms.clone(),
                    account: entry.account.clone(),
                    secret: Some(entry.password.clone()),
                    ..Default::default()
                });
            }
        }
        if let Some(token) = &self.token {
            return match &c.auth_token {
                Some(t) if matches(token, t) => Ok(Authed {
                    secret: Some(token.clone()),
                    ..Default::default()
                }),
                _ => Err(denied()),
            };
        }
        if let Some((user, pass)) = &self.single {
            let ok = c.user.as_deref().is_some_and(|u| ct_eq(u, user))
                && matches(pass, c.pass.as_deref().unwrap_or(""));
            return if ok {
                Ok(Authed {
                    user: user.clone(),
                    secret: Some(pass.clone()),
                    ..Default::default()
                })
            } else {
                Err(denied())
            };
        }
        Err(denied())
    }
}

/// Verifies the CONNECT `sig` (base64url, raw or padded; standard base64 accepted too,
/// as nats-server does) of `nonce` with the user's public nkey.
fn verify_sig(nkey: &str, sig: &str, nonce: &[u8]) -> bool {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    if sig.is_empty() || nonce.is_empty() {
        return false;
    }
    let Some(sig) = [URL_SAFE_NO_PAD, URL_SAFE, STANDARD]
        .iter()
        .find_map(|e| e.decode(sig).ok())
    else {
        return false;
    };
    nkeys::KeyPair::from_public_key(nkey).is_ok_and(|kp| kp.verify(nonce, &sig).is_ok())
}

/// Route authorization (`cluster { authorization { user password } }`).
pub fn check_route(
    auth: &crate::config::Authorization,
    user: Option<&str>,
    pass: Option<&str>,
) -> bool {
    match (&auth.user, user) {
        (Some(want), Some(got)) => {
            ct_eq(want, got) && ct_eq(auth.password.as_deref().unwrap_or(""), pass.unwrap_or(""))
        }
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// CONNECT JSON for the trace log with `pass` and `auth_token` replaced, as nats-server
/// does; unparsable JSON is not shown at all.
pub fn redact_connect(json: &[u8]) -> String {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(json) else {
        return "<unparsable>".into();
    };
    if let Some(m) = v.as_object_mut() {
        for k in ["pass", "auth_token"] {
            if let Some(x) = m.get_mut(k) {
                *x = serde_json::Value::String("[REDACTED]".into());
            }
        }
    }
    v.to_string()
}

/// A fresh INFO nonce: 11 random bytes, base64url without padding (15 characters,
/// as nats-server's).
pub fn new_nonce() -> String {
    let bytes: [u8; 11] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::GLOBAL_ACCOUNT as GLOBAL;
    use crate::config::{Authorization, User};

    fn connect(user: &str, pass: &str) -> ConnectInfo {
        ConnectInfo {
            user: Some(user.into()),
            pass: Some(pass.into()),
            ..Default::default()
        }
    }

    fn auth(a: Authorization, no_auth_user: Option<&str>) -> Authenticator {
        let cfg = Config {
            authorization: a,
            no_auth_user: no_auth_user.map(Into::into),
            ..Config::default()
        };
        Authenticator::build(&cfg).expect("valid auth config")
    }

    #[test]
    fn user_pass_and_token() {
        let a = auth(
            Authorization {
                user: Some("a".into()),
                password: Some("b".into()),
                ..Default::default()
            },
            None,
        );
        assert!(a.required());
        assert!(a.authenticate(&connect("a", "b"), b"", &[]).is_ok());
        assert_eq!(
            a.authenticate(&connect("a", "x"), b"", &[]).unwrap_err(),
            Denied::User("a".into())
        );
        let a = auth(
            Authorization {
                token: Some("tok".into()),
                ..Default::default()
            },
            None,
        );
        let mut c = ConnectInfo {
            auth_token: Some("tok".into()),
            ..Default::default()
        };
        assert!(a.authenticate(&c, b"", &[]).is_ok());
        c.auth_token = None;
        assert_eq!(a.authenticate(&c, b"", &[]).unwrap_err(), Denied::Anonymous);
    }

    #[test]
    fn bcrypt_users_and_no_auth_user() {
        let hash = bcrypt::hash("s3cret", 4).expect("hash");
        let a = auth(
            Authorization {
                users: vec![
                    User {
                        user: Some("bob".into()),
                        password: Some(hash),
                        ..Default::default()
                    },
                    User {
                        user: Some("guest".into()),
                        password: Some("g".into()),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
            Some("guest"),
        );
        assert!(!a.required() && a.configured());
        assert!(a.authenticate(&connect("bob", "s3cret"), b"", &[]).is_ok());
        assert!(a.authenticate(&connect("bob", "x"), b"", &[]).is_err());
        let anon = a
            .authenticate(&ConnectInfo::default(), b"", &[])
            .expect("no_auth_user");
        assert_eq!(anon.user, "guest");
        assert!(a.authenticate(&connect("guest", ""), b"", &[]).is_err());
    }

    #[test]
    fn reload_recheck_skips_only_an_unchanged_secret_and_spots_moved_users() {
        let users = |pass: &str| Authorization {
            users: vec![User {
                user: Some("bob".into()),
                password: Some(pass.into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let hash = bcrypt::hash("s3cret", 4).expect("hash");
        let a = auth(users(&hash), None);
        let first = a
            .authenticate(&connect("bob", "s3cret"), b"", &[])
            .expect("bob");
        assert_eq!(first.secret.as_deref(), Some(hash.as_str()));
        // The same configured hash: not compared again (the CONNECT already proved it).
        let bob = connect("bob", "s3cret");
        assert!(a.authenticate_known(&bob, b"", &[], Some(&hash)).is_ok());
        // A new hash of another password: compared, and the old password fails.
        let b = auth(users(&bcrypt::hash("other", 4).expect("hash")), None);
        assert!(b.authenticate_known(&bob, b"", &[], Some(&hash)).is_err());

        assert!(!a.moved(&bob, GLOBAL));
        assert!(a.moved(&bob, "A"), "bob is configured in $G now");
        assert!(
            a.moved(&connect("carol", "x"), GLOBAL),
            "carol is not configured"
        );
        assert!(!a.moved(&ConnectInfo::default(), GLOBAL), "no user named");
    }

    #[test]
    fn account_users_bind_to_their_account() {
        let cfg = Config {
            authorization: Authorization {
                users: vec![User {
                    user: Some("g".into()),
                    password: Some("g".into()),
                    ..Default::default()
                }],
                ..Default::default()
            },
            accounts: vec![crate::config::AccountConfig {
                name: "A".into(),
                users: vec![User {
                    user: Some("a".into()),
                    password: Some("pa".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Config::default()
        };
        let a = Authenticator::build(&cfg).expect("valid");
        let got = a.authenticate(&connect("a", "pa"), b"", &[]).expect("a");
        assert_eq!(got.account.as_deref(), Some("A"));
        let got = a.authenticate(&connect("g", "g"), b"", &[]).expect("g");
        assert_eq!(got.account, None);
        assert!(a.authenticate(&connect("a", "g"), b"", &[]).is_err());
    }

    #[test]
    fn nkey_signature() {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let kp = nkeys::KeyPair::new_user();
        let a = auth(
            Authorization {
                users: vec![User {
                    nkey: Some(kp.public_key()),
                    ..Default::default()
                }],
                ..Default::default()
            },
            None,
        );
        assert!(a.needs_nonce());
        let nonce = new_nonce();
        assert_eq!(nonce.len(), 15);
        let sig = URL_SAFE_NO_PAD.encode(kp.sign(nonce.as_bytes()).expect("sign"));
        let mut c = ConnectInfo {
            nkey: Some(kp.public_key()),
            sig: Some(sig),
            ..Default::default()
        };
        assert!(a.authenticate(&c, nonce.as_bytes(), &[]).is_ok());
        assert!(a.authenticate(&c, b"other", &[]).is_err());
        c.sig = None;
        assert!(matches!(
            a.authenticate(&c, nonce.as_bytes(), &[]),
            Err(Denied::Nkey(_))
        ));
    }
}
