//! CONNECT JSON fuzz target: parsing into `ConnectInfo` and the redaction used for the
//! trace log never panic, and a redacted CONNECT never shows a password or token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern::auth::redact_connect;
use tern::protocol::info::ConnectInfo;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<ConnectInfo>(data);
    let red = redact_connect(data);
    if red == "<unparsable>" {
        return;
    }
    let v: serde_json::Value = serde_json::from_str(&red).expect("redaction emits JSON");
    if let Some(m) = v.as_object() {
        for k in ["pass", "auth_token"] {
            if let Some(x) = m.get(k) {
                assert_eq!(x, "[REDACTED]");
            }
        }
    }
});
