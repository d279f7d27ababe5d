//! Client authentication for the single-user and token modes (`--user/--pass`,
//! `--auth`, `authorization { user password | token | users }`).
//!
//! The full model (nkeys, JWT, bcrypt, permissions, accounts) comes with the security
//! issue. Comparisons are constant time so a timing probe learns nothing.

use subtle::ConstantTimeEq;

use crate::config::Authorization;
use crate::protocol::info::ConnectInfo;

fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Whether the CONNECT credentials satisfy `auth`. Legacy `account`/`new_account`
/// fields are always a violation, as in nats-server.
pub fn check(auth: &Authorization, c: &ConnectInfo) -> bool {
    if c.account.is_some() || c.new_account.is_some() {
        return false;
    }
    if let Some(token) = &auth.token {
        return c.auth_token.as_deref().is_some_and(|t| ct_eq(t, token));
    }
    if let Some(user) = &auth.user {
        let pass = auth.password.as_deref().unwrap_or("");
        return c.user.as_deref().is_some_and(|u| ct_eq(u, user))
            && c.pass.as_deref().is_some_and(|p| ct_eq(p, pass));
    }
    if !auth.users.is_empty() {
        let (Some(u), p) = (c.user.as_deref(), c.pass.as_deref().unwrap_or("")) else {
            return false;
        };
        return auth.users.iter().any(|entry| {
            entry.user.as_deref().is_some_and(|eu| ct_eq(eu, u))
                && ct_eq(entry.password.as_deref().unwrap_or(""), p)
        });
    }
    true
}

/// Route authorization (`cluster { authorization { user password } }`).
pub fn check_route(auth: &Authorization, user: Option<&str>, pass: Option<&str>) -> bool {
    match (&auth.user, user) {
        (Some(want), Some(got)) => {
            ct_eq(want, got) && ct_eq(auth.password.as_deref().unwrap_or(""), pass.unwrap_or(""))
        }
        (Some(_), None) => false,
        (None, _) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_pass_and_token() {
        let auth = Authorization {
            user: Some("a".into()),
            password: Some("b".into()),
            ..Default::default()
        };
        let mut c = ConnectInfo {
            user: Some("a".into()),
            pass: Some("b".into()),
            ..Default::default()
        };
        assert!(check(&auth, &c));
        c.pass = Some("x".into());
        assert!(!check(&auth, &c));
        let auth = Authorization {
            token: Some("tok".into()),
            ..Default::default()
        };
        c.auth_token = Some("tok".into());
        assert!(check(&auth, &c));
        c.auth_token = None;
        assert!(!check(&auth, &c));
    }
}
