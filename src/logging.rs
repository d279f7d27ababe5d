//! Logs in nats-server's text format: `[pid] 2026/11/26 02:22:54.123456 [INF] text`.
//!
//! Client test harnesses grep these lines ("Listening for client connections on",
//! "Server is ready", "[FTL]"), so the wording and shape are part of the interface.
//! Fatal lines use the `fatal` target and print as `[FTL]`.
//!
//! Also: JSON lines (`log_format: json` / `--log_json`) for log shippers, and a size
//! limit on the `-l` file (`logfile_size_limit`) that renames it to
//! `<file>.<timestamp>` and starts a new one, as nats-server does.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use parking_lot::Mutex;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, Registry};

use crate::config::{LogFormat, Logging};

/// The event format.
pub struct NatsFormat {
    pid: u32,
    logtime: bool,
}

/// `2026/11/26 02:22:54.123456` in UTC.
fn timestamp() -> String {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let rfc = crate::monitor::rfc3339(
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(d.as_secs()),
    );
    // rfc is "YYYY-MM-DDTHH:MM:SSZ"
    let date = rfc[..10].replace('-', "/");
    format!("{} {}.{:06}", date, &rfc[11..19], d.subsec_micros())
}

impl<S, N> FormatEvent<S, N> for NatsFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "[{}] ", self.pid)?;
        if self.logtime {
            write!(writer, "{} ", timestamp())?;
        }
        let (tag, _) = level_names(event);
        write!(writer, "[{tag}] ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// (`[XXX]` tag, JSON level name) of an event; fatal lines use the `fatal` target.
fn level_names(event: &Event<'_>) -> (&'static str, &'static str) {
    let meta = event.metadata();
    if meta.target() == "fatal" {
        return ("FTL", "fatal");
    }
    match *meta.level() {
        Level::ERROR => ("ERR", "error"),
        Level::WARN => ("WRN", "warn"),
        Level::INFO => ("INF", "info"),
        Level::DEBUG => ("DBG", "debug"),
        Level::TRACE => ("TRC", "trace"),
    }
}

/// One JSON object per line: `{"time":..,"level":..,"msg":..,"pid":..}`. Structured
/// fields other than the message are appended to `msg` as `key=value`, so the object
/// keeps a fixed shape whatever the call site logged.
pub struct JsonFormat {
    pid: u32,
}

#[derive(Default)]
struct MsgVisitor(String);

impl Visit for MsgVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, |s| s.push_str(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, |s| {
            use fmt::Write as _;
            let _ = write!(s, "{value:?}");
        });
    }
}

impl MsgVisitor {
    fn push(&mut self, field: &Field, write: impl FnOnce(&mut String)) {
        if field.name() != "message" {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            self.0.push_str(field.name());
            self.0.push('=');
        } else if !self.0.is_empty() {
            // The message goes first even if a field was recorded before it.
            let mut m = String::new();
            write(&mut m);
            self.0.insert_str(0, &format!("{m} "));
            return;
        }
        write(&mut self.0);
    }
}

impl<S, N> FormatEvent<S, N> for JsonFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut v = MsgVisitor::default();
        event.record(&mut v);
        let time = crate::monitor::rfc3339(SystemTime::now());
        let line = serde_json::json!({
            "time": time,
            "level": level_names(event).1,
            "msg": v.0,
            "pid": self.pid,
        });
        writeln!(writer, "{line}")
    }
}

/// Where log lines go: stderr, or an append-mode file (`-l`) with its size so far.
struct Sink {
    w: Box<dyn Write + Send>,
    /// The file's path when logging to a file (rotation and reopen need it).
    path: Option<PathBuf>,
    written: u64,
}

/// `logfile_size_limit` in bytes (0 = none). Global like the logger; changed on reload.
static SIZE_LIMIT: AtomicU64 = AtomicU64::new(0);
/// `logfile_max_num` (0 = keep every rotated file).
static MAX_NUM: AtomicU64 = AtomicU64::new(0);

/// The shared writer handed to the fmt layer.
#[derive(Clone)]
pub struct LogSink(Arc<Mutex<Sink>>);

impl Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut s = self.0.lock();
        let n = s.w.write(buf)?;
        s.w.flush()?;
        s.written += n as u64;
        let limit = SIZE_LIMIT.load(Ordering::Relaxed);
        // Checked after the write, as nats-server does: a line is never split across files.
        if limit > 0 && s.written >= limit && s.path.is_some() {
            // A failed rotation keeps logging to the current file rather than losing lines.
            if rotate(&mut s).is_ok() {
                if let Some(path) = s.path.clone() {
                    purge_backups(&path, MAX_NUM.load(Ordering::Relaxed));
                }
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().w.flush()
    }
}

/// Renames the log file to `<file>.<YYYY.MM.DD.hh.mm.ss.nnnnnnnnn>` and opens a new one.
fn rotate(s: &mut Sink) -> std::io::Result<()> {
    let Some(path) = s.path.clone() else {
        return Ok(());
    };
    let stamp = timestamp_for_file(SystemTime::now());
    let mut backup = path.clone().into_os_string();
    backup.push(format!(".{stamp}"));
    std::fs::rename(&path, &backup)?;
    s.w = Box::new(open_append(&path)?);
    s.written = 0;
    Ok(())
}

/// Removes the oldest rotated files so that at most `max_num` files remain, the
/// active one included (nats-server's logfile_max_num). Backups are recognised by the
/// `<file>.<timestamp>` name `rotate` gives them; the fixed-width timestamp sorts by age.
/// Returns the removed names. The sink lock is held, so failures are not logged here
/// (logging would re-enter it); a file left behind is retried at the next rotation.
fn purge_backups(path: &Path, max_num: u64) -> Vec<PathBuf> {
    if max_num == 0 {
        return Vec::new();
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Some(base) = path.file_name().and_then(|b| b.to_str()) else {
        return Vec::new();
    };
    let prefix = format!("{base}.");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut backups: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.strip_prefix(&prefix).is_some_and(is_backup_stamp))
        .collect();
    backups.sort();
    let keep = (max_num - 1) as usize;
    let excess = backups.len().saturating_sub(keep);
    let mut removed = Vec::new();
    for name in backups.into_iter().take(excess) {
        let p = dir.join(&name);
        if std::fs::remove_file(&p).is_ok() {
            removed.push(p);
        }
    }
    removed
}

/// `YYYY.MM.DD.hh.mm.ss.nnnnnnnnn`, the suffix `timestamp_for_file` makes.
fn is_backup_stamp(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    let widths = [4, 2, 2, 2, 2, 2, 9];
    parts.len() == widths.len()
        && parts
            .iter()
            .zip(widths)
            .all(|(p, w)| p.len() == w && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Go's `2006.01.02.15.04.05.000000000` in UTC (nats-server's backup suffix).
fn timestamp_for_file(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let rfc = crate::monitor::rfc3339(
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(d.as_secs()),
    );
    // rfc is "YYYY-MM-DDTHH:MM:SSZ"
    let digits: String = rfc[..19]
        .chars()
        .map(|c| if c.is_ascii_digit() { c } else { '.' })
        .collect();
    format!("{digits}.{:09}", d.subsec_nanos())
}

impl<'a> MakeWriter<'a> for LogSink {
    type Writer = LogSink;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Installs the global logger with nats text lines. Safe to call more than once (later
/// calls are no-ops), so tests that start several in-process servers can share it.
pub fn init(
    debug: bool,
    trace: bool,
    logtime: bool,
    log_file: Option<&Path>,
) -> std::io::Result<()> {
    init_with(&Logging {
        debug,
        trace,
        logtime,
        log_file: log_file.map(Path::to_path_buf),
        ..Logging::default()
    })
}

/// Installs the global logger from the logging settings (format, file, size limit).
pub fn init_with(l: &Logging) -> std::io::Result<()> {
    let (w, written): (Box<dyn Write + Send>, u64) = match &l.log_file {
        Some(p) => {
            let f = open_append(p)?;
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            (Box::new(f), len)
        }
        None => (Box::new(std::io::stderr()), 0),
    };
    let sink = LogSink(Arc::new(Mutex::new(Sink {
        w,
        path: l.log_file.clone(),
        written,
    })));
    let (filter, handle) = reload::Layer::new(level_filter(l.debug, l.trace));
    // Set before the subscriber exists, so the first callsite registrations see them;
    // put back below if another logger was installed first.
    let (was_debug, was_trace) = (
        DEBUG_ON.load(Ordering::Relaxed),
        TRACE_ON.load(Ordering::Relaxed),
    );
    DEBUG_ON.store(l.debug, Ordering::Relaxed);
    TRACE_ON.store(l.trace, Ordering::Relaxed);
    let pid = std::process::id();
    // Both layer types are built and one is disabled (`Option` layers are no-ops), so
    // the subscriber type stays the same whichever format is chosen.
    let json = l.log_format == LogFormat::Json;
    let text_layer = (!json).then(|| {
        tracing_subscriber::fmt::layer()
            .event_format(NatsFormat {
                pid,
                logtime: l.logtime,
            })
            .with_writer(sink.clone())
    });
    let json_layer = json.then(|| {
        tracing_subscriber::fmt::layer()
            .event_format(JsonFormat { pid })
            .with_writer(sink.clone())
    });
    if tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::filter::filter_fn(own_or_warning))
        .with(text_layer)
        .with(json_layer)
        .try_init()
        .is_ok()
    {
        let _ = LEVEL.set(handle);
        set_size_limit(l.log_size_limit);
        set_max_num(l.log_max_num);
        if l.log_file.is_some() {
            let _ = FILE.set(sink);
        }
    } else {
        DEBUG_ON.store(was_debug, Ordering::Relaxed);
        TRACE_ON.store(was_trace, Ordering::Relaxed);
    }
    Ok(())
}

/// Applies a new `logfile_size_limit` (reload).
pub fn set_size_limit(limit: u64) {
    SIZE_LIMIT.store(limit, Ordering::Relaxed);
}

/// Applies a new `logfile_max_num` (reload).
pub fn set_max_num(n: u32) {
    MAX_NUM.store(u64::from(n), Ordering::Relaxed);
}

fn open_append(p: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
}

/// The log file sink, for reopening after an external rotation (SIGUSR1).
static FILE: OnceLock<LogSink> = OnceLock::new();

/// Reopens the `-l` log file (after logrotate moved it). No-op when logging to stderr.
pub fn reopen() -> std::io::Result<()> {
    if let Some(sink) = FILE.get() {
        let mut s = sink.0.lock();
        if let Some(path) = s.path.clone() {
            let f = open_append(&path)?;
            s.written = f.metadata().map(|m| m.len()).unwrap_or(0);
            s.w = Box::new(f);
        }
    }
    Ok(())
}

/// tern's own events at the configured level; the libraries' (rustls, openraft, h2,
/// tonic...) only from WARN up. With `-D`, nats-server's debug log shows the server's
/// own lines, not its dependencies' handshake chatter.
/// nats-server's `-V` alone traces without debug lines: DEBUG events pass only with `-D`
/// (the level filter lets them through whenever trace is on).
fn own_or_warning(meta: &tracing::Metadata<'_>) -> bool {
    if *meta.level() == Level::DEBUG && !DEBUG_ON.load(Ordering::Relaxed) {
        return false;
    }
    *meta.level() <= tracing::Level::WARN
        || meta.target().starts_with("tern")
        || meta.target() == "fatal"
}

fn level_filter(debug: bool, trace: bool) -> LevelFilter {
    if trace {
        LevelFilter::TRACE
    } else if debug {
        LevelFilter::DEBUG
    } else {
        LevelFilter::INFO
    }
}

/// `-D` and `-V` as installed (the callsite cache is rebuilt when they change).
static DEBUG_ON: AtomicBool = AtomicBool::new(false);
static TRACE_ON: AtomicBool = AtomicBool::new(false);

/// Whether protocol tracing (`-V`) is on: delivery paths check it (one relaxed load)
/// before building their `->> [MSG ...]` lines.
#[inline]
pub fn trace_enabled() -> bool {
    TRACE_ON.load(Ordering::Relaxed)
}

/// Handle to change the level on reload (-D / -V / debug / trace keys).
static LEVEL: OnceLock<reload::Handle<LevelFilter, Registry>> = OnceLock::new();

/// Applies new debug/trace settings to the running logger.
pub fn set_level(debug: bool, trace: bool) {
    if let Some(h) = LEVEL.get() {
        DEBUG_ON.store(debug, Ordering::Relaxed);
        TRACE_ON.store(trace, Ordering::Relaxed);
        // `modify` rebuilds the callsite cache, so `own_or_warning` sees the new flags.
        let _ = h.modify(|f| *f = level_filter(debug, trace));
    }
}

/// Logs a fatal line (`[FTL] ...`).
pub fn fatal(msg: &str) {
    tracing::error!(target: "fatal", "{msg}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_keeps_the_newest_backups_and_the_active_file() {
        let dir = std::env::temp_dir().join(format!("tern-logpurge-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("t.log");
        std::fs::write(&log, "active").unwrap();
        let stamps = [
            "2026.01.01.00.00.00.000000001",
            "2026.01.01.00.00.00.000000002",
            "2026.01.02.00.00.00.000000000",
            "2026.02.01.00.00.00.000000000",
        ];
        for s in stamps {
            std::fs::write(dir.join(format!("t.log.{s}")), s).unwrap();
        }
        // Not backups of t.log: left alone whatever their age.
        std::fs::write(dir.join("t.log.old"), "x").unwrap();
        std::fs::write(dir.join("other.log.2020.01.01.00.00.00.000000000"), "x").unwrap();
        let removed = purge_backups(&log, 3);
        let names: Vec<String> = removed
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                format!("t.log.{}", stamps[0]),
                format!("t.log.{}", stamps[1])
            ]
        );
        for s in &stamps[2..] {
            assert!(dir.join(format!("t.log.{s}")).exists());
        }
        assert!(log.exists() && dir.join("t.log.old").exists());
        assert!(purge_backups(&log, 0).is_empty(), "0 keeps everything");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn file_sink(path: &Path) -> LogSink {
        LogSink(Arc::new(Mutex::new(Sink {
            w: Box::new(open_append(path).unwrap()),
            path: Some(path.to_path_buf()),
            written: 0,
        })))
    }

    #[test]
    fn library_events_below_warn_are_dropped() {
        let dir = std::env::temp_dir().join(format!("tern-log-libs-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("t.log");
        let _ = std::fs::remove_file(&path);
        let sink = file_sink(&path);
        let sub = tracing_subscriber::registry()
            .with(LevelFilter::TRACE)
            .with(tracing_subscriber::filter::filter_fn(own_or_warning))
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(JsonFormat { pid: 7 })
                    .with_writer(sink),
            );
        tracing::subscriber::with_default(sub, || {
            tracing::info!("ours");
            tracing::debug!(target: "rustls::server::hs", "decided upon suite");
            tracing::info!(target: "openraft::core", "chatter");
            tracing::warn!(target: "openraft::core", "theirs, but a warning");
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let msgs: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["msg"].to_string())
            .collect();
        assert_eq!(msgs, ["\"ours\"", "\"theirs, but a warning\""], "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn backup_suffix_is_go_layout() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 42);
        assert_eq!(timestamp_for_file(t), "2023.11.14.22.13.20.000000042");
    }

    #[test]
    fn json_lines_parse() {
        let dir = std::env::temp_dir().join(format!("tern-log-json-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("t.log");
        let _ = std::fs::remove_file(&path);
        let sink = file_sink(&path);
        let sub = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .event_format(JsonFormat { pid: 7 })
                .with_writer(sink),
        );
        tracing::subscriber::with_default(sub, || {
            tracing::info!("hello \"world\"");
            tracing::warn!(cid = 3, "closing");
            tracing::error!(target: "fatal", "boom");
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0]["msg"], "hello \"world\"");
        assert_eq!(lines[0]["level"], "info");
        assert_eq!(lines[0]["pid"], 7);
        assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(lines[1]["msg"], "closing cid=3");
        assert_eq!(lines[2]["level"], "fatal");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
