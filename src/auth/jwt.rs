//! NATS JWTs (decentralized auth, "operator mode"): decoding, signature checks and the
//! claims tern honours.
//!
//! A NATS JWT is `base64url(header).base64url(claims).base64url(sig)` with header
//! `{"typ":"JWT","alg":"ed25519-nkey"}`; `sig` is the ed25519 signature of the first two
//! parts (as ASCII) by the issuer's nkey, and the issuer's public nkey is the claims' `iss`.
//! No maintained Rust crate covers the NATS claim set, so the few claims used here are
//! decoded with serde_json; the signature is checked with the `nkeys` crate.
//!
//! Chain of trust: the operator JWT (conf `operator`) is self-signed and names its
//! signing keys; an account JWT (from `resolver_preload`) must be issued by the operator
//! or one of its signing keys; a user JWT (from CONNECT `jwt`) must be issued by its
//! account or one of the account's signing keys (then `issuer_account` names the
//! account). The user then proves it holds the user seed by signing the INFO nonce.

use std::collections::{HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value as J;

/// The only algorithm of v2 JWTs (v1 used `ed25519`, still accepted by nats-server).
const ALG: &str = "ed25519-nkey";
const ALG_V1: &str = "ed25519";

/// What every NATS JWT carries; `nats` is the type-specific part.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims<N> {
    #[serde(default)]
    pub jti: String,
    #[serde(default)]
    pub iat: i64,
    #[serde(default)]
    pub iss: String,
    #[serde(default)]
    pub sub: String,
    #[serde(default)]
    pub name: String,
    /// Expiry (unix seconds); 0 = never.
    #[serde(default)]
    pub exp: i64,
    /// Not valid before (unix seconds); 0 = always.
    #[serde(default)]
    pub nbf: i64,
    pub nats: N,
}

#[derive(Debug, Deserialize)]
struct Header {
    #[serde(default)]
    typ: String,
    #[serde(default)]
    alg: String,
}

/// `nats` of an operator JWT.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct OperatorNats {
    #[serde(rename = "type")]
    pub kind: String,
    pub signing_keys: Vec<String>,
    pub system_account: String,
}

/// Limits of an account JWT (`nats.limits`); -1 = unlimited. A limit missing from the
/// claims is 0, i.e. "none allowed", exactly as nats-server decodes it (Go zero values);
/// nsc always writes -1 for unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct AccountLimits {
    pub conn: i64,
    pub subs: i64,
    pub payload: i64,
}

/// A signing key entry: a bare public key, or a scoped key `{ "kind": "user_scope",
/// "key": ... }` (the scope's template is not applied by tern).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SigningKey {
    Key(String),
    Scoped { key: String },
}

impl SigningKey {
    fn key(&self) -> &str {
        match self {
            SigningKey::Key(k) | SigningKey::Scoped { key: k } => k,
        }
    }
}

/// `nats` of an account JWT.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AccountNats {
    #[serde(rename = "type")]
    pub kind: String,
    pub limits: AccountLimits,
    pub signing_keys: Vec<SigningKey>,
    /// User public key (or `*`) -> revoke users issued at or before this time.
    pub revocations: HashMap<String, i64>,
    /// Permissions of users whose JWT sets none.
    pub default_permissions: Option<JwtPermissions>,
}

/// `pub`/`sub` of a user JWT: allow and deny lists.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JwtPerm {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

/// `resp` of a user JWT: `ttl` is in nanoseconds (Go time.Duration).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JwtResp {
    pub max: i64,
    pub ttl: i64,
}

/// Permissions as user JWTs (and account default_permissions) carry them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JwtPermissions {
    #[serde(rename = "pub")]
    pub publish: JwtPerm,
    #[serde(rename = "sub")]
    pub subscribe: JwtPerm,
    pub resp: Option<JwtResp>,
}

impl JwtPermissions {
    fn is_empty(&self) -> bool {
        self.publish.allow.is_empty()
            && self.publish.deny.is_empty()
            && self.subscribe.allow.is_empty()
            && self.subscribe.deny.is_empty()
            && self.resp.is_none()
    }

    /// The same rules in the conf `permissions` shape that [`super::permissions`] parses.
    /// `None` when nothing is restricted (no checks on the hot path).
    pub fn to_conf(&self) -> Option<J> {
        if self.is_empty() {
            return None;
        }
        let mut m = serde_json::Map::new();
        for (name, p) in [("publish", &self.publish), ("subscribe", &self.subscribe)] {
            let mut o = serde_json::Map::new();
            if !p.allow.is_empty() {
                o.insert("allow".into(), J::from(p.allow.clone()));
            }
            if !p.deny.is_empty() {
                o.insert("deny".into(), J::from(p.deny.clone()));
            }
            if !o.is_empty() {
                m.insert(name.into(), J::Object(o));
            }
        }
        if let Some(r) = self.resp {
            let mut o = serde_json::Map::new();
            o.insert("max".into(), J::from(r.max));
            if r.ttl != 0 {
                o.insert("expires".into(), J::from(format!("{}ns", r.ttl)));
            }
            m.insert("allow_responses".into(), J::Object(o));
        }
        Some(J::Object(m))
    }
}

/// `nats` of a user JWT. Missing `subs`/`payload` are 0 (see [`AccountLimits`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct UserNats {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(flatten)]
    pub perms: JwtPermissions,
    /// Max subscriptions; -1 = unlimited.
    pub subs: i64,
    /// Max message payload; -1 = unlimited.
    pub payload: i64,
    /// No nonce signature required.
    pub bearer_token: bool,
    /// Set when a signing key of the account issued the JWT.
    pub issuer_account: String,
}

pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn b64(s: &str) -> Result<Vec<u8>, String> {
    [URL_SAFE_NO_PAD, URL_SAFE, STANDARD]
        .iter()
        .find_map(|e| e.decode(s).ok())
        .ok_or_else(|| "invalid base64".to_string())
}

/// Whether `key` is a public nkey whose prefix byte is `prefix` (`O`, `A`, `U`).
pub fn is_public_key(key: &str, prefix: char) -> bool {
    key.starts_with(prefix) && nkeys::KeyPair::from_public_key(key).is_ok()
}

/// Decodes a JWT and checks its signature by its `iss` and its `nats.type`. Expiry is
/// checked separately ([`Claims::time_valid`]) since an expired JWT is still parsed
/// for the log line.
pub fn decode<N: DeserializeOwned>(token: &str, kind: &str) -> Result<Claims<N>, String> {
    let token = token.trim();
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("expected 3 chunks".into());
    };
    let header: Header = serde_json::from_slice(&b64(h)?).map_err(|e| e.to_string())?;
    if !header.typ.eq_ignore_ascii_case("JWT") {
        return Err(format!("not supported type {:?}", header.typ));
    }
    if !header.alg.eq_ignore_ascii_case(ALG) && !header.alg.eq_ignore_ascii_case(ALG_V1) {
        return Err(format!("unexpected {:?} algorithm", header.alg));
    }
    let raw: J = serde_json::from_slice(&b64(c)?).map_err(|e| e.to_string())?;
    let got = raw
        .get("nats")
        .and_then(|n| n.get("type"))
        .and_then(J::as_str)
        .unwrap_or("");
    if got != kind {
        return Err(format!("not a {kind} claim (type {got:?})"));
    }
    let claims: Claims<N> = serde_json::from_value(raw).map_err(|e| e.to_string())?;
    let sig = b64(s)?;
    let issuer = nkeys::KeyPair::from_public_key(&claims.iss)
        .map_err(|_| format!("invalid issuer {:?}", claims.iss))?;
    let signed = &token[..h.len() + 1 + c.len()];
    issuer
        .verify(signed.as_bytes(), &sig)
        .map_err(|_| "claim failed V2 signature verification".to_string())?;
    Ok(claims)
}

impl<N> Claims<N> {
    /// Neither expired nor before `nbf` at `now` (unix seconds).
    pub fn time_valid(&self, now: i64) -> bool {
        let expired = self.exp > 0 && now > self.exp;
        let early = self.nbf > 0 && now < self.nbf;
        !expired && !early
    }
}

/// Strips the `-----BEGIN ...-----` decoration of a `.jwt` or `.creds` file: returns
/// the first JWT (a line starting with `eyJ`) in `text`, or the text itself.
pub fn undecorate(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with("eyJ"))
        .unwrap_or_else(|| text.trim())
}

/// A `.creds` file: the user JWT and the user's nkey seed.
pub fn parse_creds(text: &str) -> Result<(String, String), String> {
    let mut jwt = None;
    let mut seed = None;
    for l in text.lines().map(str::trim) {
        if l.starts_with("eyJ") && jwt.is_none() {
            jwt = Some(l.to_string());
        } else if l.starts_with("SU") && seed.is_none() {
            seed = Some(l.to_string());
        }
    }
    match (jwt, seed) {
        (Some(j), Some(s)) => Ok((j, s)),
        (None, _) => Err("no user JWT found in the credentials file".into()),
        (_, None) => Err("no user nkey seed found in the credentials file".into()),
    }
}

/// An account from `resolver_preload`, verified against the trusted operator keys.
#[derive(Debug)]
pub struct JwtAccount {
    /// The account's public key (nats-server's account name in operator mode).
    pub name: String,
    /// The JWT's `name` claim.
    pub claim_name: String,
    pub issuer: String,
    pub exp: i64,
    pub signing_keys: HashSet<String>,
    pub limits: AccountLimits,
    pub revocations: HashMap<String, i64>,
    pub default_permissions: Option<JwtPermissions>,
}

impl JwtAccount {
    pub fn from_jwt(token: &str) -> Result<JwtAccount, String> {
        let c: Claims<AccountNats> = decode(token, "account")?;
        if !is_public_key(&c.sub, 'A') {
            return Err(format!("invalid account subject {:?}", c.sub));
        }
        Ok(JwtAccount {
            signing_keys: c
                .nats
                .signing_keys
                .iter()
                .map(|k| k.key().to_string())
                .collect(),
            name: c.sub,
            claim_name: c.name,
            issuer: c.iss,
            exp: c.exp,
            limits: c.nats.limits,
            revocations: c.nats.revocations,
            default_permissions: c.nats.default_permissions,
        })
    }

    /// nats-server checkUserRevoked: a user issued at or before the revocation time of
    /// its key (or of `*`) is revoked.
    pub fn revoked(&self, user: &str, issued_at: i64) -> bool {
        [user, "*"]
            .iter()
            .any(|k| self.revocations.get(*k).is_some_and(|t| issued_at <= *t))
    }
}

/// The trusted operator: its identity and signing keys (the only account issuers).
#[derive(Debug)]
pub struct Operator {
    pub name: String,
    pub trusted: HashSet<String>,
    pub system_account: String,
}

impl Operator {
    /// Reads conf `operator`: a path to a (possibly decorated) JWT file, or the JWT
    /// inline (nats-server takes the value as a JWT when the file does not exist and it
    /// starts with `eyJ`).
    pub fn load(value: &str) -> Result<Operator, String> {
        let text = match std::fs::read_to_string(value) {
            Ok(t) => t,
            Err(_) if value.trim_start().starts_with("eyJ") => value.to_string(),
            Err(e) => return Err(format!("error parsing operator JWT: {e}")),
        };
        let c: Claims<OperatorNats> = decode(undecorate(&text), "operator")
            .map_err(|e| format!("error parsing operator JWT: {e}"))?;
        if !is_public_key(&c.sub, 'O') {
            return Err(format!("invalid operator subject {:?}", c.sub));
        }
        let mut trusted: HashSet<String> = c.nats.signing_keys.into_iter().collect();
        trusted.insert(c.sub);
        Ok(Operator {
            name: c.name,
            trusted,
            system_account: c.nats.system_account,
        })
    }
}

/// Test and tool helpers that issue JWTs (what `nsc` does). Used by the tests of this
/// crate and of cluster-tests; the server never issues JWTs.
pub mod issue {
    use super::*;

    /// Encodes and signs claims: `nats` gets `type` and `version: 2` added.
    pub fn encode(
        signer: &nkeys::KeyPair,
        subject: &str,
        kind: &str,
        mut nats: J,
        extra: J,
    ) -> String {
        if let Some(m) = nats.as_object_mut() {
            m.insert("type".into(), J::from(kind));
            m.insert("version".into(), J::from(2));
        }
        let jti: [u8; 16] = rand::random();
        let mut claims = serde_json::json!({
            "jti": URL_SAFE_NO_PAD.encode(jti),
            "iat": now_unix(),
            "iss": signer.public_key(),
            "name": subject.chars().take(8).collect::<String>(),
            "sub": subject,
            "nats": nats,
        });
        if let (Some(m), Some(x)) = (claims.as_object_mut(), extra.as_object()) {
            for (k, v) in x {
                m.insert(k.clone(), v.clone());
            }
        }
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
        let body = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{header}.{body}");
        // Signing with a seed-holding key pair cannot fail.
        let sig = signer.sign(input.as_bytes()).unwrap_or_default();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// A self-signed operator JWT.
    pub fn operator(op: &nkeys::KeyPair, nats: J) -> String {
        encode(op, &op.public_key(), "operator", nats, J::Null)
    }

    /// Fills the unset limits in `m` with -1 (unlimited), as nsc writes them.
    fn unlimited(m: &mut J, keys: &[&str]) {
        if let Some(m) = m.as_object_mut() {
            for k in keys {
                m.entry(k.to_string()).or_insert(J::from(-1));
            }
        }
    }

    /// An account JWT for `account` signed by `signer` (operator or its signing key);
    /// limits not given in `nats.limits` are unlimited.
    pub fn account(signer: &nkeys::KeyPair, account: &str, mut nats: J) -> String {
        if let Some(m) = nats.as_object_mut() {
            let limits = m.entry("limits").or_insert(J::Object(Default::default()));
            unlimited(
                limits,
                &[
                    "subs", "data", "payload", "imports", "exports", "conn", "leaf",
                ],
            );
            if let Some(l) = limits.as_object_mut() {
                l.entry("wildcards").or_insert(J::Bool(true));
            }
        }
        encode(signer, account, "account", nats, J::Null)
    }

    /// A user JWT for `user` signed by `signer`; `extra` adds top-level claims (exp).
    /// Limits not given in `nats` are unlimited.
    pub fn user(signer: &nkeys::KeyPair, user: &str, mut nats: J, extra: J) -> String {
        unlimited(&mut nats, &["subs", "data", "payload"]);
        encode(signer, user, "user", nats, extra)
    }

    /// The `.creds` file text nsc writes.
    pub fn creds(jwt: &str, seed: &str) -> String {
        format!(
            "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\
             NKEY Seed printed below can be used to sign and prove identity.\n\
             NKEYs are sensitive and should be treated as secrets.\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
             *************************************************************\n"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn roundtrip_and_tamper() {
        let op = nkeys::KeyPair::new_operator();
        let t = issue::operator(&op, json!({"signing_keys": []}));
        let o = Operator::load(&t).expect("inline operator");
        assert!(o.trusted.contains(&op.public_key()));
        let acc = nkeys::KeyPair::new_account();
        let t = issue::account(&op, &acc.public_key(), json!({"limits": {"conn": 2}}));
        let a = JwtAccount::from_jwt(&t).expect("account");
        assert_eq!(a.limits.conn, 2);
        assert_eq!(a.limits.subs, -1);
        assert_eq!(a.issuer, op.public_key());
        // A changed claims part no longer matches the signature.
        let parts: Vec<&str> = t.split('.').collect();
        let forged = issue::account(&op, &nkeys::KeyPair::new_account().public_key(), json!({}));
        let forged_body = forged.split('.').nth(1).expect("body");
        let bad = format!("{}.{}.{}", parts[0], forged_body, parts[2]);
        assert!(JwtAccount::from_jwt(&bad).is_err());
        // Wrong type.
        assert!(decode::<UserNats>(&t, "user").is_err());
        // Limits left out of the claims are 0, as nats-server decodes them.
        let t = issue::encode(&op, &acc.public_key(), "account", json!({}), J::Null);
        let a = JwtAccount::from_jwt(&t).expect("account");
        assert_eq!(a.limits, AccountLimits::default());
        assert_eq!(a.limits.conn, 0);
    }

    #[test]
    fn user_claims_and_creds() {
        let acc = nkeys::KeyPair::new_account();
        let u = nkeys::KeyPair::new_user();
        let t = issue::user(
            &acc,
            &u.public_key(),
            json!({"pub": {"deny": ["secret.>"]}, "subs": 3, "resp": {"max": 1, "ttl": 0}}),
            json!({"exp": 10}),
        );
        let c: Claims<UserNats> = decode(&t, "user").expect("user");
        assert_eq!(c.nats.subs, 3);
        assert_eq!(c.nats.payload, -1);
        assert!(!c.time_valid(11) && c.time_valid(9));
        let conf = c.nats.perms.to_conf().expect("perms");
        assert_eq!(conf["publish"]["deny"], json!(["secret.>"]));
        assert!(super::super::permissions::Permissions::parse(&conf).is_ok());
        let seed = u.seed().expect("seed");
        let text = issue::creds(&t, &seed);
        assert_eq!(parse_creds(&text), Ok((t.clone(), seed)));
        assert_eq!(undecorate(&text), t);
        assert!(parse_creds("nothing").is_err());
    }
}
