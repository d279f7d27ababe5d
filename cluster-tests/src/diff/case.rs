//! The differential case builder ([`Diff`]) and the transcript comparison.

use super::*;

// ---------------------------------------------------------------------------------------
// The differential case builder
// ---------------------------------------------------------------------------------------

/// Turns a transcript into the string that is compared (default: [`Transcript::render`]).
pub type Summary = fn(&Transcript) -> String;

enum Expect {
    Contains(String),
    NotContains(String),
    Count(String, usize),
    Closed(usize, bool),
}

struct SideResult {
    transcript: Transcript,
    compared: String,
    log: String,
}

/// One differential case: server setup + conversation + expectations on the reference.
///
/// ```no_run
/// use cluster_tests::diff::Diff;
/// Diff::new("sub_invalid_subject")
///     .send("CONNECT {\"verbose\":false}\r\nSUB foo..bar 1\r\n")
///     .sync()
///     .expect("-ERR 'Invalid Subject'\r\n")
///     .expect_open(0)
///     .run();
/// ```
///
/// Connection 0 is opened (and its INFO read) at the start; [`Diff::on`] switches the
/// current connection, opening it on first use. The expectations are checked against the
/// reference server's compared output (so a wrong test or a broken harness fails loudly),
/// then the two compared outputs must be identical.
pub struct Diff {
    name: String,
    setup: ServerSetup,
    steps: Vec<Step>,
    cur: usize,
    opened: Vec<usize>,
    summary: Option<Summary>,
    unordered: bool,
    expects: Vec<Expect>,
}

/// Sorts each run of consecutive received lines (`cN < ...`) of a rendering.
pub fn sort_received_runs(rendered: &str) -> String {
    let mut out = String::new();
    let mut run: Vec<&str> = Vec::new();
    let flush = |run: &mut Vec<&str>, out: &mut String| {
        run.sort_unstable();
        for l in run.drain(..) {
            out.push_str(l);
            out.push('\n');
        }
    };
    for l in rendered.lines() {
        let is_recv = l
            .strip_prefix('c')
            .map(|r| r.trim_start_matches(|c: char| c.is_ascii_digit()))
            .is_some_and(|r| r.starts_with(" < "));
        if is_recv {
            run.push(l);
        } else {
            flush(&mut run, &mut out);
            out.push_str(l);
            out.push('\n');
        }
    }
    flush(&mut run, &mut out);
    out
}

impl Diff {
    /// A new case; connection 0 is opened first.
    pub fn new(name: &str) -> Self {
        Diff {
            name: name.to_owned(),
            setup: ServerSetup::default(),
            steps: vec![Step::Open(0)],
            cur: 0,
            opened: vec![0],
            summary: None,
            unordered: false,
            expects: Vec::new(),
        }
    }

    /// Extra server flags (both servers).
    pub fn args(mut self, args: &[&str]) -> Self {
        self.setup.args.extend(args.iter().map(|s| (*s).to_owned()));
        self
    }

    /// A conf file (nats conf syntax) passed with `-c` to both servers.
    pub fn conf(mut self, text: &str) -> Self {
        self.setup.conf = Some(text.to_owned());
        self
    }

    /// Switch to connection `c`, opening it (connect + read INFO) on first use.
    pub fn on(mut self, c: usize) -> Self {
        if !self.opened.contains(&c) {
            self.opened.push(c);
            self.steps.push(Step::Open(c));
        }
        self.cur = c;
        self
    }

    /// Write bytes in one write.
    pub fn send(mut self, bytes: impl AsRef<[u8]>) -> Self {
        self.steps
            .push(Step::Send(self.cur, bytes.as_ref().to_vec()));
        self
    }

    /// Write a CONNECT signed with the nkey `seed` over this connection's INFO nonce;
    /// `fields` are extra JSON members without braces, e.g. `"verbose":false`.
    pub fn send_signed(mut self, seed: &str, fields: &str) -> Self {
        self.steps.push(Step::SendSigned(
            self.cur,
            seed.to_owned(),
            fields.to_owned(),
        ));
        self
    }

    /// Write bytes in chunks of the given sizes (cycled), with a short gap between chunks.
    pub fn send_chunked(mut self, bytes: impl AsRef<[u8]>, sizes: &[usize]) -> Self {
        let bytes = bytes.as_ref();
        let mut chunks = Vec::new();
        let mut pos = 0;
        let mut i = 0;
        while pos < bytes.len() {
            let n = sizes[i % sizes.len()].max(1).min(bytes.len() - pos);
            chunks.push(bytes[pos..pos + n].to_vec());
            pos += n;
            i += 1;
        }
        self.steps.push(Step::SendChunks(self.cur, chunks));
        self
    }

    /// `PING\r\n`, then read until every PING sent on this connection is answered, or EOF.
    pub fn sync(mut self) -> Self {
        self.steps.push(Step::Sync(self.cur));
        self
    }

    /// Read until quiet for 200 ms or EOF.
    pub fn recv(mut self) -> Self {
        self.steps.push(Step::Recv(self.cur));
        self
    }

    /// Read for exactly `ms` milliseconds (or until EOF): use only where protocol time is
    /// the subject.
    pub fn quiet(mut self, ms: u64) -> Self {
        self.steps
            .push(Step::Quiet(self.cur, Duration::from_millis(ms)));
        self
    }

    /// Expect the server to close the connection (reads until EOF, 3 s max).
    pub fn wait_close(mut self) -> Self {
        self.steps.push(Step::WaitClose(self.cur));
        self
    }

    /// Rewrite the conf file with `conf` and reload the server (SIGHUP), waiting until it
    /// logs "Reloaded server configuration". Needs a [`Diff::conf`] start.
    pub fn reload(mut self, conf: &str) -> Self {
        self.steps.push(Step::Reload(self.cur, conf.to_string()));
        self
    }

    /// Sort each run of consecutive received frames before comparing: for cases where one
    /// message matches several subscriptions of one connection, whose delivery order is
    /// unspecified (nats-server itself varies it between runs).
    pub fn unordered(mut self) -> Self {
        self.unordered = true;
        self
    }

    /// Compare `f(transcript)` instead of the full rendering (for randomised behaviour).
    pub fn summarize(mut self, f: Summary) -> Self {
        self.summary = Some(f);
        self
    }

    /// What the reference sent (the compared output without the `cN > ...` lines of client
    /// data) must contain `s`. `s` is escaped like the rendering, so write `"\r\n"` for
    /// CRLF; one rendered line is one frame, prefixed `cN < `.
    pub fn expect(mut self, s: &str) -> Self {
        self.expects.push(Expect::Contains(escape(s.as_bytes())));
        self
    }

    /// The reference's compared output must not contain `s`.
    pub fn expect_not(mut self, s: &str) -> Self {
        self.expects.push(Expect::NotContains(escape(s.as_bytes())));
        self
    }

    /// The reference's compared output must contain `s` exactly `n` times.
    pub fn expect_count(mut self, s: &str, n: usize) -> Self {
        self.expects.push(Expect::Count(escape(s.as_bytes()), n));
        self
    }

    /// The reference closed connection `c`.
    pub fn expect_closed(mut self, c: usize) -> Self {
        self.expects.push(Expect::Closed(c, true));
        self
    }

    /// The reference kept connection `c` open.
    pub fn expect_open(mut self, c: usize) -> Self {
        self.expects.push(Expect::Closed(c, false));
        self
    }

    fn run_side(&self, side: Side, bin: &Path) -> Result<SideResult, String> {
        let server = ServerProc::start(bin, &self.setup)?;
        let transcript = play(side, &server, &self.steps);
        let compared = match self.summary {
            Some(f) => f(&transcript),
            None if self.unordered => sort_received_runs(&transcript.render()),
            None => transcript.render(),
        };
        let log = server.log();
        Ok(SideResult {
            transcript,
            compared,
            log,
        })
    }

    /// Runs the case against both servers (in parallel) and panics with both transcripts
    /// and a diff when they differ. Returns the reference's compared output.
    pub fn run(self) -> String {
        let reference = reference_bin();
        let tern = tern_bin();
        let (ref_res, tern_res) = std::thread::scope(|s| {
            let a = s.spawn(|| self.run_side(Side::Reference, &reference));
            let b = s.spawn(|| self.run_side(Side::Tern, &tern));
            (
                a.join().expect("reference thread panicked"),
                b.join().expect("tern thread panicked"),
            )
        });
        let unwrap = |r: Result<SideResult, String>, side: Side| {
            r.unwrap_or_else(|e| panic!("[{}] could not start {}: {e}", self.name, side.label()))
        };
        let SideResult {
            transcript: ref_t,
            compared: ref_out,
            log: ref_log,
        } = unwrap(ref_res, Side::Reference);
        let SideResult {
            compared: tern_out,
            log: tern_log,
            ..
        } = unwrap(tern_res, Side::Tern);

        // Expectations look at what the server sent (and markers), not at what we sent.
        let received: String = ref_out
            .lines()
            .filter(|l| !is_sent_line(l))
            .flat_map(|l| [l, "\n"])
            .collect();
        let mut failures = Vec::new();
        for e in &self.expects {
            match e {
                Expect::Contains(s) if !received.contains(s.as_str()) => {
                    failures.push(format!("expected to receive: {s}"));
                }
                Expect::NotContains(s) if received.contains(s.as_str()) => {
                    failures.push(format!("expected not to receive: {s}"));
                }
                Expect::Count(s, n) if received.matches(s.as_str()).count() != *n => {
                    failures.push(format!(
                        "expected to receive {n} occurrence(s) of {s}, got {}",
                        received.matches(s.as_str()).count()
                    ));
                }
                Expect::Closed(c, want) if ref_t.closed(*c) != *want => {
                    failures.push(format!(
                        "expected connection c{c} to be {}",
                        if *want { "closed (<EOF>)" } else { "open" }
                    ));
                }
                _ => {}
            }
        }
        assert!(
            failures.is_empty(),
            "[{}] the reference nats-server did not behave as the case expects \
             (test or harness bug):\n  {}\n--- nats-server transcript ---\n{ref_out}\
             --- nats-server log ---\n{ref_log}",
            self.name,
            failures.join("\n  ")
        );
        if ref_out != tern_out {
            panic!(
                "[{}] transcripts differ\n--- nats-server ---\n{ref_out}--- tern ---\n{tern_out}\
                 --- diff (- nats-server, + tern) ---\n{}--- tern log ---\n{tern_log}",
                self.name,
                line_diff(&ref_out, &tern_out)
            );
        }
        ref_out
    }
}

/// `c<N> > ...`: a line recording bytes the client sent.
fn is_sent_line(l: &str) -> bool {
    l.strip_prefix('c')
        .map(|r| r.trim_start_matches(|c: char| c.is_ascii_digit()))
        .is_some_and(|r| r.starts_with(" > "))
}

/// A minimal LCS line diff (`-` only in a, `+` only in b, two spaces: common).
pub fn line_diff(a: &str, b: &str) -> String {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            let _ = writeln!(out, "  {}", a[i]);
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            let _ = writeln!(out, "- {}", a[i]);
            i += 1;
        } else {
            let _ = writeln!(out, "+ {}", b[j]);
            j += 1;
        }
    }
    out
}
