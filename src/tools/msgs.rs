//! `tern pub`, `sub`, `req` and `reply`.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};

use super::conn::{new_inbox, Conn, Msg};
use super::ConnArgs;

/// `{{Count}}` (or the nats CLI's `{{.Count}}`) becomes the message number.
fn render(template: &str, n: u64) -> String {
    if template.contains("{{") {
        let n = n.to_string();
        template.replace("{{.Count}}", &n).replace("{{Count}}", &n)
    } else {
        template.to_string()
    }
}

pub async fn publish(
    args: &ConnArgs,
    subject: &str,
    msg: &str,
    count: u64,
    sleep: Option<Duration>,
) -> Result<()> {
    let (servers, auth) = args.servers()?;
    let mut c = Conn::connect(&servers, 0, &auth).await?;
    for i in 1..=count {
        c.publish(subject, None, render(msg, i).as_bytes());
        if let Some(d) = sleep {
            c.flush().await?;
            tokio::time::sleep(d).await;
        } else if c.pending() > 32 * 1024 {
            c.flush().await?;
        }
    }
    // The PONG proves the server has processed every PUB before it.
    c.round_trip().await?;
    eprintln!("Published {count} messages to \"{subject}\"");
    Ok(())
}

fn print_msg(n: u64, m: &Msg, raw: bool) {
    let mut out = std::io::stdout().lock();
    if raw {
        let _ = out.write_all(&m.payload);
        let _ = out.write_all(b"\n");
    } else {
        let _ = match &m.reply {
            Some(r) => writeln!(
                out,
                "[#{n}] Received on \"{}\" with reply \"{r}\"",
                m.subject
            ),
            None => writeln!(out, "[#{n}] Received on \"{}\"", m.subject),
        };
        if let Some(h) = &m.headers {
            let _ = out.write_all(h.strip_suffix(b"\r\n\r\n").unwrap_or(h));
            let _ = out.write_all(b"\n");
        }
        let _ = out.write_all(&m.payload);
        let _ = out.write_all(b"\n\n");
    }
    let _ = out.flush();
}

/// Subscribes and prints. When the connection drops it reconnects to the next server
/// of the list and subscribes again (messages published meanwhile are lost, as with
/// any core NATS subscriber).
pub async fn subscribe(
    args: &ConnArgs,
    subject: &str,
    queue: Option<&str>,
    count: u64,
    raw: bool,
    wait: Option<Duration>,
) -> Result<()> {
    let (servers, auth) = args.servers()?;
    let deadline = wait.map(|w| Instant::now() + w);
    let mut received = 0u64;
    let mut start = 0usize;
    let mut announced = false;
    loop {
        let attempt = async {
            let mut c = Conn::connect(&servers, start, &auth).await?;
            c.subscribe(subject, queue);
            c.round_trip().await?;
            if !announced {
                eprintln!("Subscribing on {subject}");
                announced = true;
            } else {
                eprintln!("Reconnected to nats://{}", c.server.addr());
            }
            loop {
                let m = c.next_msg().await?;
                received += 1;
                print_msg(received, &m, raw);
                if count > 0 && received >= count {
                    return Ok::<(), anyhow::Error>(());
                }
            }
        };
        let res = match deadline {
            Some(d) => tokio::time::timeout_at(d.into(), attempt)
                .await
                .map_err(|_| anyhow!("timed out after {received} of {count} messages"))?,
            None => attempt.await,
        };
        match res {
            Ok(()) => return Ok(()),
            Err(e) if e.to_string().contains("Authorization") => return Err(e),
            Err(e) => {
                eprintln!("tern: {e:#}; reconnecting");
                start += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// True for a `NATS/1.0 503` status (no responders).
fn is_no_responders(m: &Msg) -> bool {
    m.payload.is_empty()
        && m.headers
            .as_ref()
            .is_some_and(|h| h.starts_with(b"NATS/1.0 503"))
}

pub async fn request(
    args: &ConnArgs,
    subject: &str,
    msg: &str,
    timeout: Duration,
    raw: bool,
) -> Result<()> {
    let (servers, auth) = args.servers()?;
    let mut c = Conn::connect(&servers, 0, &auth).await?;
    let inbox = new_inbox();
    let sid = c.subscribe(&inbox, None);
    c.unsubscribe_after(sid, 1);
    c.publish(subject, Some(&inbox), msg.as_bytes());
    c.flush().await?;
    let m = tokio::time::timeout(timeout, c.next_msg())
        .await
        .map_err(|_| anyhow!("no reply on \"{subject}\" within {timeout:?}"))??;
    if is_no_responders(&m) {
        bail!("no responders are available for \"{subject}\"");
    }
    print_msg(1, &m, raw);
    Ok(())
}

pub async fn reply(
    args: &ConnArgs,
    subject: &str,
    msg: &str,
    count: u64,
    queue: Option<&str>,
) -> Result<()> {
    let (servers, auth) = args.servers()?;
    let mut c = Conn::connect(&servers, 0, &auth).await?;
    c.subscribe(subject, queue);
    c.round_trip().await?;
    eprintln!("Listening on \"{subject}\"");
    let mut n = 0;
    while count == 0 || n < count {
        let m = c.next_msg().await?;
        let Some(to) = m.reply.as_deref() else {
            continue;
        };
        n += 1;
        c.publish(to, None, render(msg, n).as_bytes());
        c.flush().await?;
        let _ = writeln!(std::io::stderr(), "[#{n}] Replied to \"{}\"", m.subject);
    }
    c.round_trip().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        assert_eq!(render("m {{Count}} {{.Count}}", 7), "m 7 7");
        assert_eq!(render("plain", 7), "plain");
    }
}
