//! Operator-mode fixtures: an operator, accounts and users with their JWTs, issued in
//! the test (what `nsc` would write), and the conf text both servers load.

use nkeys::KeyPair;
use serde_json::{json, Value as J};
use tern::auth::jwt::issue;

/// A trusted operator and the accounts it issued.
pub struct OperatorSetup {
    pub operator: KeyPair,
    pub operator_jwt: String,
    /// (public key, account JWT) preloaded in the resolver.
    pub preload: Vec<(String, String)>,
}

/// A user's credentials: JWT and nkey seed.
pub struct UserCreds {
    pub jwt: String,
    pub seed: String,
    pub public: String,
}

impl UserCreds {
    /// `.creds` file text.
    pub fn creds_file(&self) -> String {
        issue::creds(&self.jwt, &self.seed)
    }

    /// Extra CONNECT members for the diff harness's `send_signed`.
    pub fn connect_fields(&self) -> String {
        format!("\"verbose\":false,\"jwt\":\"{}\"", self.jwt)
    }
}

impl Default for OperatorSetup {
    fn default() -> Self {
        Self::new(json!({}))
    }
}

impl OperatorSetup {
    /// A self-signed operator; `nats` adds operator claims (signing_keys).
    pub fn new(nats: J) -> Self {
        let operator = KeyPair::new_operator();
        let operator_jwt = issue::operator(&operator, nats);
        OperatorSetup {
            operator,
            operator_jwt,
            preload: Vec::new(),
        }
    }

    /// A new account issued by `signer` (the operator when `None`), preloaded.
    pub fn account(&mut self, signer: Option<&KeyPair>, nats: J) -> KeyPair {
        let acc = KeyPair::new_account();
        let jwt = issue::account(signer.unwrap_or(&self.operator), &acc.public_key(), nats);
        self.preload.push((acc.public_key(), jwt));
        acc
    }

    /// Conf text: inline operator JWT, `resolver: MEMORY`, the preloaded accounts, and
    /// `extra` lines.
    pub fn conf(&self, extra: &str) -> String {
        let mut s = format!(
            "operator: \"{}\"\nresolver: MEMORY\nresolver_preload: {{\n",
            self.operator_jwt
        );
        for (k, j) in &self.preload {
            s.push_str(&format!("  {k}: \"{j}\"\n"));
        }
        s.push_str("}\n");
        s.push_str(extra);
        s
    }
}

/// A user of `account` signed by `signer` (the account itself unless a signing key is
/// given, then `issuer_account` is set); `extra` adds top-level claims such as `exp`.
pub fn user(account: &KeyPair, signer: Option<&KeyPair>, mut nats: J, extra: J) -> UserCreds {
    let u = KeyPair::new_user();
    if signer.is_some() {
        nats["issuer_account"] = J::from(account.public_key());
    }
    let jwt = issue::user(signer.unwrap_or(account), &u.public_key(), nats, extra);
    UserCreds {
        jwt,
        seed: u.seed().expect("user seed"),
        public: u.public_key(),
    }
}
