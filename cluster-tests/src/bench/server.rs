//! Starting/stopping a server process under test and sampling its resource
//! usage from `/proc`.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// How to launch one side of the comparison.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    /// Short name used in reports (`nats`, `tern`).
    pub label: String,
    /// Executable.
    pub program: PathBuf,
    /// Extra arguments appended after `-a 127.0.0.1 -p PORT`.
    pub extra_args: Vec<String>,
}

/// A running server process.
pub struct RunningServer {
    child: Child,
    /// Client port on 127.0.0.1.
    pub port: u16,
    /// Where stdout/stderr go.
    pub log_path: PathBuf,
}

/// CPU time and peak memory of a process, from `/proc`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcSample {
    /// utime + stime, seconds.
    pub cpu_secs: f64,
    /// VmHWM (peak resident set), bytes.
    pub peak_rss: u64,
}

/// Ask the kernel for a free port. There is a small race between closing the
/// probe socket and the server binding it; acceptable for a local bench.
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Clock ticks per second for `/proc/<pid>/stat` times.
#[allow(unsafe_code)]
pub fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a configuration value; no memory is shared.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Set the calling thread's nice value. Call it first thing in `main`: threads
/// and processes created afterwards (load generators, servers) inherit it.
/// Negative values need root (CAP_SYS_NICE).
#[allow(unsafe_code)]
pub fn set_nice(n: i32) -> Result<()> {
    // SAFETY: setpriority only changes the scheduling priority of the calling
    // thread (who = 0); no memory is shared.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, n) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context(format!("setpriority({n})"));
    }
    Ok(())
}

/// CPU time (all threads) and peak RSS of process `pid`.
pub fn proc_sample(pid: u32) -> Result<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after "(comm)": state is field 3, utime 14, stime 15.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow!("bad /proc stat"))?;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| -> Result<f64> {
        Ok(f.get(i)
            .ok_or_else(|| anyhow!("short /proc stat"))?
            .parse::<u64>()? as f64)
    };
    let cpu_secs = (ticks(11)? + ticks(12)?) / clock_ticks();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let peak_rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0);
    Ok(ProcSample { cpu_secs, peak_rss })
}

/// Busy CPU seconds of the whole machine (all cores) from `/proc/stat`:
/// user+nice+system+irq+softirq+steal.
pub fn machine_busy_secs() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or_else(|| anyhow!("no cpu line in /proc/stat"))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
    Ok(busy as f64 / clock_ticks())
}

/// Reserve `n` distinct free ports: all probe listeners stay open until every
/// port is known, so the kernel cannot hand out the same port twice. (The
/// race with other programs between closing them and the servers binding
/// remains; acceptable for a local bench.)
pub fn free_ports(n: usize) -> Result<Vec<u16>> {
    let ls = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    ls.iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect::<Result<Vec<_>>>()
}

impl ServerSpec {
    /// Start the server on a fresh port and wait until it accepts a TCP
    /// connection and sends `INFO`.
    pub fn start(&self) -> Result<RunningServer> {
        self.start_with(free_port()?, &[])
    }

    /// Start the server as `PROGRAM -a 127.0.0.1 -p PORT EXTRA... ARGS...`
    /// (`extra` = the spec's extra arguments, `args` e.g. cluster flags) and
    /// wait until it accepts a TCP connection and sends `INFO`.
    pub fn start_with(&self, port: u16, args: &[String]) -> Result<RunningServer> {
        let log_path = std::env::temp_dir().join(format!(
            "tern-bench-{}-{}-{}.log",
            std::process::id(),
            self.label,
            port
        ));
        let log = File::create(&log_path).with_context(|| format!("create {log_path:?}"))?;
        let log2 = log.try_clone()?;
        let child = Command::new(&self.program)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(&self.extra_args)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .with_context(|| format!("spawn {:?}", self.program))?;
        let mut srv = RunningServer {
            child,
            port,
            log_path,
        };
        if let Err(e) = srv.wait_ready(Duration::from_secs(10)) {
            let tail = srv.log_tail();
            srv.stop();
            return Err(e.context(format!("{} did not start; log tail:\n{tail}", self.label)));
        }
        Ok(srv)
    }
}

impl RunningServer {
    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let addr = self.addr();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("server exited early with {status}");
            }
            if let Ok(s) = TcpStream::connect(&addr) {
                s.set_read_timeout(Some(Duration::from_secs(2)))?;
                let mut line = String::new();
                BufReader::new(s).read_line(&mut line)?;
                if line.starts_with("INFO ") {
                    return Ok(());
                }
                bail!("server did not send INFO first: {line:?}");
            }
            if Instant::now() > deadline {
                bail!("server port {} not accepting after {timeout:?}", self.port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The executable actually running (after any wrapper `exec`s).
    pub fn exe(&self) -> Option<PathBuf> {
        std::fs::read_link(format!("/proc/{}/exe", self.pid())).ok()
    }

    /// Current CPU time and peak RSS of the server.
    pub fn sample(&self) -> Result<ProcSample> {
        proc_sample(self.pid())
    }

    /// Last ~2 KiB of the server log.
    pub fn log_tail(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = File::open(&self.log_path) {
            let _ = f.read_to_string(&mut s);
        }
        let start = s.len().saturating_sub(2048);
        let start = (start..s.len())
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(s.len());
        s[start..].to_string()
    }

    /// Kill and reap the server, and remove its log.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log_path);
    }

    /// Whether the process is still alive.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop();
    }
}
