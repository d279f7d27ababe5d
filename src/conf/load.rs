//! Loading the effective `Config`: defaults -> file -> `TERN_` environment -> CLI.
//!
//! The file format follows the extension: `.toml`, `.yaml`/`.yml` use the `config` crate's
//! own formats (keys = `Config` field names); anything else is a nats conf file, read by
//! [`NatsConfFormat`], our `config::Format`. The environment layer is the `config` crate's
//! `Environment` (`TERN_MAX_PAYLOAD=2MB`, `TERN_CLUSTER__NAME=x`). Command-line overrides
//! are applied to the typed result, then the whole thing is validated once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use config::{Environment, File, FileFormat, FileStoredFormat, Format, ValueKind};
use serde_json::Value as J;

use super::map::map_root;
use super::parser::parse_partial;
use super::{ConfError, ConfErrors, Diagnostic, Pos};
use crate::cli::Overrides;
use crate::config::Config;

/// A loaded configuration and the warnings met on the way (unknown keys, unsupported
/// features, deprecated forms). Warnings never stop the server.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
}

/// What the nats conf format reports beside the values it hands to the `config` crate
/// (whose `Format::parse` can only return values or one error).
#[derive(Debug, Default)]
struct Sink {
    errors: Vec<ConfError>,
    warnings: Vec<Diagnostic>,
    origins: HashMap<String, Pos>,
}

/// nats-server conf files as a `config` crate format. Clones share one diagnostics sink.
#[derive(Debug, Clone)]
pub struct NatsConfFormat {
    /// The file being read: names positions and anchors relative `include`s.
    path: PathBuf,
    sink: Arc<Mutex<Sink>>,
    /// Environment for `$VARIABLE`s (`None` = the process's).
    env: Option<Arc<HashMap<String, String>>>,
}

impl NatsConfFormat {
    pub fn new(path: &Path) -> Self {
        NatsConfFormat {
            path: path.to_path_buf(),
            sink: Arc::default(),
            env: None,
        }
    }

    /// Resolve `$VARIABLE`s from `env` instead of the process environment.
    pub fn with_env(mut self, env: Option<Arc<HashMap<String, String>>>) -> Self {
        self.env = env;
        self
    }

    fn take(&self) -> Sink {
        // A poisoned lock only means another parse panicked; the data is still usable.
        let mut g = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *g)
    }
}

impl Format for NatsConfFormat {
    fn parse(
        &self,
        _uri: Option<&String>,
        text: &str,
    ) -> Result<config::Map<String, config::Value>, Box<dyn std::error::Error + Send + Sync>> {
        let origin = self.path.to_string_lossy().into_owned();
        let mut g = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        let (root, mut errors) = parse_partial(text, &self.path, self.env.as_deref());
        let mapped = map_root(&root);
        g.warnings.extend(mapped.warnings);
        g.origins.extend(mapped.origins);
        if !errors.is_empty() || !mapped.errors.is_empty() {
            errors.extend(mapped.errors);
            // Syntax and key errors interleaved in file order read best.
            errors.sort_by_key(pos_key);
            g.errors.extend(errors.iter().cloned());
            return Err(Box::new(ConfErrors(errors)));
        }
        Ok(mapped
            .values
            .iter()
            .map(|(k, v)| (k.clone(), json_to_config(v, &origin)))
            .collect())
    }
}

impl FileStoredFormat for NatsConfFormat {
    fn file_extensions(&self) -> &'static [&'static str] {
        &["conf"]
    }
}

fn pos_key(d: &Diagnostic) -> (Option<std::sync::Arc<str>>, u32, u32) {
    match &d.pos {
        Some(p) => (Some(p.file.clone()), p.line, p.col),
        None => (None, 0, 0),
    }
}

fn json_to_config(v: &J, origin: &String) -> config::Value {
    let kind = match v {
        J::Null => ValueKind::Nil,
        J::Bool(b) => ValueKind::Boolean(*b),
        J::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => ValueKind::I64(i),
            (None, Some(u), _) => ValueKind::U64(u),
            (_, _, Some(f)) => ValueKind::Float(f),
            _ => ValueKind::Nil,
        },
        J::String(s) => ValueKind::String(s.clone()),
        J::Array(a) => ValueKind::Array(a.iter().map(|x| json_to_config(x, origin)).collect()),
        J::Object(o) => ValueKind::Table(
            o.iter()
                .map(|(k, x)| (k.clone(), json_to_config(x, origin)))
                .collect(),
        ),
    };
    config::Value::new(Some(origin), kind)
}

/// File kinds by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Nats,
    Toml,
    Yaml,
}

pub fn file_kind(path: &Path) -> FileKind {
    match path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .as_deref()
    {
        Some("toml") => FileKind::Toml,
        Some("yaml" | "yml") => FileKind::Yaml,
        _ => FileKind::Nats,
    }
}

/// Loads the configuration from `file` (if any), the process environment and `overrides`.
/// On failure returns every error found.
pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Loaded, Vec<ConfError>> {
    load_with_env(file, overrides, None)
}

/// [`load`] with an explicit environment (`None` = the process's), used for both the
/// `TERN_` layer and nats conf `$VARIABLE`s. Tests use it to leave process state alone.
pub fn load_with_env(
    file: Option<&Path>,
    overrides: &Overrides,
    env: Option<HashMap<String, String>>,
) -> Result<Loaded, Vec<ConfError>> {
    let r = check_with_env(file, overrides, env);
    match r.config {
        Some(config) if r.errors.is_empty() => Ok(Loaded {
            config,
            warnings: r.warnings,
        }),
        _ => Err(r.errors),
    }
}

/// Everything loading found: the config (when there were no errors), every error and
/// every warning. `tern config check` shows warnings even when errors stop the load.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub config: Option<Config>,
    pub errors: Vec<ConfError>,
    pub warnings: Vec<Diagnostic>,
}

/// Like [`load_with_env`] but keeps the warnings when there are errors.
pub fn check_with_env(
    file: Option<&Path>,
    overrides: &Overrides,
    env: Option<HashMap<String, String>>,
) -> Report {
    let fail = |errors: Vec<ConfError>, warnings: Vec<Diagnostic>| Report {
        config: None,
        errors,
        warnings,
    };
    let mut warnings = Vec::new();
    let mut builder = config::Config::builder();
    let mut nats: Option<NatsConfFormat> = None;
    let env = env.map(Arc::new);
    if let Some(path) = file {
        if let Err(e) = std::fs::metadata(path) {
            let msg = format!("error opening config file '{}': {e}", path.display());
            return fail(vec![ConfError::bare(msg)], warnings);
        }
        let name = path.to_string_lossy().into_owned();
        builder = match file_kind(path) {
            FileKind::Toml | FileKind::Yaml => {
                let fmt = if file_kind(path) == FileKind::Toml {
                    FileFormat::Toml
                } else {
                    FileFormat::Yaml
                };
                warnings.extend(unknown_keys_in(path, fmt));
                builder.add_source(File::new(&name, fmt))
            }
            FileKind::Nats => {
                let fmt = NatsConfFormat::new(path).with_env(env.clone());
                nats = Some(fmt.clone());
                builder.add_source(File::new(&name, fmt))
            }
        };
    }
    let env_map = env.map(|m| {
        m.iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<config::Map<String, String>>()
    });
    builder = builder.add_source(
        Environment::with_prefix("TERN")
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("cluster.routes")
            .source(env_map),
    );

    let built = builder.build();
    let sink = nats.as_ref().map(NatsConfFormat::take).unwrap_or_default();
    warnings.extend(sink.warnings);
    if !sink.errors.is_empty() {
        return fail(sink.errors, warnings);
    }
    let mut cfg: Config = match built.and_then(|c| c.try_deserialize()) {
        Ok(c) => c,
        Err(e) => return fail(vec![ConfError::bare(e.to_string())], warnings),
    };
    cfg.config_file = file.map(Path::to_path_buf);

    if let Err(e) = overrides.apply(&mut cfg) {
        return fail(vec![ConfError::bare(e)], warnings);
    }

    let mut errors = Vec::new();
    for c in validate(&cfg) {
        let d = Diagnostic {
            pos: sink.origins.get(c.field).cloned(),
            message: c.message,
        };
        if c.error {
            errors.push(d);
        } else {
            warnings.push(d);
        }
    }
    Report {
        config: errors.is_empty().then_some(cfg),
        errors,
        warnings,
    }
}

/// One finding of [`validate`], tied to the field it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub field: &'static str,
    pub message: String,
    pub error: bool,
}

/// Cross-field and range rules, on the final merged config (nats-server validateOptions).
pub fn validate(c: &Config) -> Vec<Check> {
    let mut out = Vec::new();
    let mut err = |field, message: String| {
        out.push(Check {
            field,
            message,
            error: true,
        })
    };
    // Compared as they will run: 0 means the default (nats-server fills its defaults
    // before this check).
    let payload = if c.max_payload == 0 {
        crate::config::defaults::MAX_PAYLOAD
    } else {
        c.max_payload
    };
    let pending = if c.max_pending <= 0 {
        crate::config::defaults::MAX_PENDING
    } else {
        c.max_pending
    };
    if payload > pending {
        err(
            "max_payload",
            format!("max_payload ({payload}) cannot be higher than max_pending ({pending})"),
        );
    }
    if c.max_payload < 0 {
        err(
            "max_payload",
            format!("invalid max_payload {}", c.max_payload),
        );
    }
    if c.max_control_line < 0 {
        err(
            "max_control_line",
            format!("invalid max_control_line {}", c.max_control_line),
        );
    }
    if c.lame_duck_duration < std::time::Duration::from_secs(30) {
        err(
            "lame_duck_duration",
            format!(
                "invalid lame_duck_duration of {}, minimum is 30 seconds",
                crate::config::duration::format_duration(c.lame_duck_duration)
            ),
        );
    }
    let ports = [
        ("port", Some(c.port)),
        ("http_port", c.http_port),
        ("https_port", c.https_port),
        ("cluster.port", c.cluster.port),
    ];
    for (field, p) in ports {
        if let Some(p) = p {
            if !(-1..=65535).contains(&p) {
                err(
                    field,
                    format!("invalid {field} {p}: must be -1 (random) to 65535"),
                );
            }
        }
    }
    if let Some(n) = &c.server_name {
        if n.contains(char::is_whitespace) {
            err("server_name", "server name cannot contain spaces".into());
        }
    }
    if let Some(n) = &c.cluster.name {
        if n.contains(char::is_whitespace) {
            err(
                "cluster.name",
                "cluster name cannot contain spaces or new lines".into(),
            );
        }
    }
    let a = &c.authorization;
    if (a.user.is_some() || a.password.is_some()) && a.token.is_some() {
        err(
            "authorization.token",
            "Cannot have a user/pass and token".into(),
        );
    }
    if !a.users.is_empty() && a.user.is_some() {
        err(
            "authorization.users",
            "Can not have a single user/pass and a users array".into(),
        );
    }
    if !a.users.is_empty() && a.token.is_some() {
        err(
            "authorization.users",
            "Can not have a token and a users array".into(),
        );
    }
    if let Err(e) = crate::auth::Authenticator::build(c) {
        err("authorization", e);
    }
    if let Some(t) = &c.tls {
        if t.cert_file.is_none() {
            err("tls", "missing 'cert_file' in TLS configuration".into());
        }
        if t.key_file.is_none() {
            err("tls", "missing 'key_file' in TLS configuration".into());
        }
        if t.verify_clients() && t.ca_file.is_none() {
            err(
                "tls",
                "tls verify without ca_file: client certificates cannot be verified".into(),
            );
        }
    }
    // 8 MB, nats-server's MAX_PAYLOAD_MAX_SIZE.
    if c.max_payload > 8 * 1024 * 1024 {
        out.push(Check {
            field: "max_payload",
            message: "Maximum payloads over 8.00 MB are generally discouraged and could lead to poor performance".into(),
            error: false,
        });
    }
    if c.jetstream {
        out.push(Check {
            field: "jetstream",
            message: "jetstream is not supported yet, ignoring".into(),
            error: false,
        });
    }
    out
}

/// TOML/YAML keys that no `Config` field reads: warned (the `config` crate ignores them).
fn unknown_keys_in(path: &Path, fmt: FileFormat) -> Vec<Diagnostic> {
    let name = path.to_string_lossy().into_owned();
    let Ok(file_json) = config::Config::builder()
        .add_source(File::new(&name, fmt))
        .build()
        .and_then(|c| c.try_deserialize::<J>())
    else {
        return Vec::new(); // the main load reports the parse error
    };
    let Ok(known) = serde_json::to_value(Config::default()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    walk_unknown(&file_json, &known, "", &name, &mut out);
    out
}

fn walk_unknown(file: &J, known: &J, prefix: &str, name: &str, out: &mut Vec<Diagnostic>) {
    let (J::Object(f), J::Object(k)) = (file, known) else {
        return;
    };
    for (key, v) in f {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match k.get(key) {
            None => out.push(Diagnostic::bare(format!(
                "{name}: unknown field \"{path}\""
            ))),
            Some(kv) => walk_unknown(v, kv, &path, name, out),
        }
    }
}
