//! Logs in nats-server's text format: `[pid] 2026/11/26 02:22:54.123456 [INF] text`.
//!
//! Client test harnesses grep these lines ("Listening for client connections on",
//! "Server is ready", "[FTL]"), so the wording and shape are part of the interface.
//! Fatal lines use the `fatal` target and print as `[FTL]`.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use parking_lot::Mutex;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, Registry};

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
        let meta = event.metadata();
        let tag = if meta.target() == "fatal" {
            "FTL"
        } else {
            match *meta.level() {
                Level::ERROR => "ERR",
                Level::WARN => "WRN",
                Level::INFO => "INF",
                Level::DEBUG => "DBG",
                Level::TRACE => "TRC",
            }
        };
        write!(writer, "[{tag}] ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Where log lines go: stderr, or an append-mode file (`-l`).
#[derive(Clone)]
pub struct LogSink(Arc<Mutex<Box<dyn Write + Send>>>);

impl Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut w = self.0.lock();
        let n = w.write(buf)?;
        w.flush()?;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().flush()
    }
}

impl<'a> MakeWriter<'a> for LogSink {
    type Writer = LogSink;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Installs the global logger. Safe to call more than once (later calls are no-ops),
/// so tests that start several in-process servers can share it.
pub fn init(
    debug: bool,
    trace: bool,
    logtime: bool,
    log_file: Option<&Path>,
) -> std::io::Result<()> {
    let sink: Box<dyn Write + Send> = match log_file {
        Some(p) => Box::new(open_append(p)?),
        None => Box::new(std::io::stderr()),
    };
    let sink = LogSink(Arc::new(Mutex::new(sink)));
    let (filter, handle) = reload::Layer::new(level_filter(debug, trace));
    let fmt_layer = tracing_subscriber::fmt::layer()
        .event_format(NatsFormat {
            pid: std::process::id(),
            logtime,
        })
        .with_writer(sink.clone());
    if tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .try_init()
        .is_ok()
    {
        let _ = LEVEL.set(handle);
        if let Some(p) = log_file {
            let _ = FILE.set((sink, p.to_path_buf()));
        }
    }
    Ok(())
}

fn open_append(p: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
}

/// The log file and where it lives, for reopening after rotation (SIGUSR1).
static FILE: OnceLock<(LogSink, std::path::PathBuf)> = OnceLock::new();

/// Reopens the `-l` log file (after logrotate moved it). No-op when logging to stderr.
pub fn reopen() -> std::io::Result<()> {
    if let Some((sink, path)) = FILE.get() {
        let f = open_append(path)?;
        *sink.0.lock() = Box::new(f);
    }
    Ok(())
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

/// Handle to change the level on reload (-D / -V / debug / trace keys).
static LEVEL: OnceLock<reload::Handle<LevelFilter, Registry>> = OnceLock::new();

/// Applies new debug/trace settings to the running logger.
pub fn set_level(debug: bool, trace: bool) {
    if let Some(h) = LEVEL.get() {
        let _ = h.modify(|f| *f = level_filter(debug, trace));
    }
}

/// Logs a fatal line (`[FTL] ...`).
pub fn fatal(msg: &str) {
    tracing::error!(target: "fatal", "{msg}");
}
