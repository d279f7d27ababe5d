//! `tern bench`: N publishers and M subscribers on one subject for a short load, then a
//! summary in the nats CLI's words (`Pub stats: 1,234 msgs/sec ~ 1.2 MB/sec`).

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;

use super::conn::Conn;
use super::ConnArgs;

#[derive(Args, Debug)]
pub struct BenchArgs {
    subject: String,
    /// Messages to publish (split across publishers)
    #[arg(long, default_value_t = 100_000)]
    msgs: u64,
    /// Payload size in bytes
    #[arg(long, default_value_t = 128)]
    size: usize,
    /// Publisher connections
    #[arg(long = "pub", default_value_t = 1)]
    pubs: usize,
    /// Subscriber connections (each receives every message)
    #[arg(long = "sub", default_value_t = 0)]
    subs: usize,
    /// Give up on subscribers after this long without completion
    #[arg(long, default_value = "60s", value_parser = super::parse_duration)]
    timeout: Duration,
    #[command(flatten)]
    conn: ConnArgs,
}

/// One client's result: messages, first and last instant.
#[derive(Clone, Copy)]
struct Sample {
    msgs: u64,
    start: Instant,
    end: Instant,
}

impl Sample {
    fn rate(&self) -> f64 {
        let secs = (self.end - self.start).as_secs_f64().max(1e-9);
        self.msgs as f64 / secs
    }
}

/// `1234567.8` → `1,234,568`.
fn commas(n: f64) -> String {
    let s = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The group's rate over its whole span (earliest start to latest end).
fn group(samples: &[Sample]) -> Option<Sample> {
    let first = samples.first()?;
    Some(Sample {
        msgs: samples.iter().map(|s| s.msgs).sum(),
        start: samples.iter().map(|s| s.start).min().unwrap_or(first.start),
        end: samples.iter().map(|s| s.end).max().unwrap_or(first.end),
    })
}

fn line(label: &str, s: &Sample, size: usize) -> String {
    let rate = s.rate();
    format!(
        "{label} stats: {} msgs/sec ~ {:.2} MB/sec",
        commas(rate),
        rate * size as f64 / (1024.0 * 1024.0)
    )
}

pub async fn run(a: BenchArgs) -> Result<()> {
    if a.pubs == 0 && a.subs == 0 {
        bail!("nothing to do: --pub and --sub are both 0");
    }
    let (servers, auth) = a.conn.servers()?;
    let expected = a.msgs;
    // Publisher i connects to server i of the list and subscriber j to server
    // pubs + j (wrapping), so a list of several nodes puts them on different nodes.
    // Subscribers first, each confirmed by a PONG, so no message is published before
    // every subscription is registered.
    let mut subs = Vec::new();
    for i in 0..a.subs {
        let mut c = Conn::connect(&servers, a.pubs + i, &auth).await?;
        c.subscribe(&a.subject, None);
        c.round_trip().await?;
        subs.push(c);
    }
    // Subscriptions on other nodes reach this one as route interest shortly after.
    if a.subs > 0 && servers.len() > 1 {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let sub_tasks: Vec<_> = subs
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let mut first = None;
                let mut n = 0;
                while n < expected {
                    c.next_msg().await?;
                    first.get_or_insert_with(Instant::now);
                    n += 1;
                }
                let end = Instant::now();
                Ok::<_, anyhow::Error>(Sample {
                    msgs: n,
                    start: first.unwrap_or(end),
                    end,
                })
            })
        })
        .collect();
    eprintln!(
        "Starting benchmark [msgs={}, msgsize={}, pubs={}, subs={}]",
        a.msgs, a.size, a.pubs, a.subs
    );
    let payload = vec![b'x'; a.size];
    let mut pub_tasks = Vec::new();
    for i in 0..a.pubs {
        let mut n = a.msgs / a.pubs as u64;
        if i == 0 {
            n += a.msgs % a.pubs as u64;
        }
        let mut c = Conn::connect(&servers, i, &auth).await?;
        let (subject, payload) = (a.subject.clone(), payload.clone());
        pub_tasks.push(tokio::spawn(async move {
            let start = Instant::now();
            for _ in 0..n {
                c.publish(&subject, None, &payload);
                if c.pending() >= 64 * 1024 {
                    c.flush().await?;
                }
            }
            c.round_trip().await?;
            Ok::<_, anyhow::Error>(Sample {
                msgs: n,
                start,
                end: Instant::now(),
            })
        }));
    }
    let mut pub_samples = Vec::new();
    for t in pub_tasks {
        pub_samples.push(t.await??);
    }
    let mut sub_samples = Vec::new();
    let deadline = tokio::time::Instant::now() + a.timeout;
    let mut incomplete = 0;
    for t in sub_tasks {
        match tokio::time::timeout_at(deadline, t).await {
            Ok(r) => sub_samples.push(r??),
            Err(_) => incomplete += 1,
        }
    }
    let both = group(&pub_samples).zip(group(&sub_samples));
    if let Some((p, s)) = both {
        let all = Sample {
            msgs: p.msgs + s.msgs,
            start: p.start.min(s.start),
            end: p.end.max(s.end),
        };
        println!("{}", line("NATS Pub/Sub", &all, a.size));
    }
    for (label, samples) in [("Pub", &pub_samples), ("Sub", &sub_samples)] {
        if let Some(g) = group(samples) {
            println!("{}", line(label, &g, a.size));
            if samples.len() > 1 {
                for (i, s) in samples.iter().enumerate() {
                    println!(
                        " [{}] {} msgs/sec ~ {:.2} MB/sec ({} msgs)",
                        i + 1,
                        commas(s.rate()),
                        s.rate() * a.size as f64 / (1024.0 * 1024.0),
                        s.msgs
                    );
                }
            }
        }
    }
    if incomplete > 0 {
        bail!(
            "{incomplete} of {} subscribers did not receive all {expected} messages within {:?}",
            a.subs,
            a.timeout
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_format() {
        assert_eq!(commas(0.0), "0");
        assert_eq!(commas(999.4), "999");
        assert_eq!(commas(1234567.8), "1,234,568");
        assert_eq!(commas(100000.0), "100,000");
    }
}
