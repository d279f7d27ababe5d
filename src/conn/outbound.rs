//! Per-connection send buffer shared by every publisher that delivers to this
//! connection, and the write loop that drains it.
//!
//! Publishers append under a short mutex (no I/O under it) and only wake the writer once
//! per read batch (see `Pcd` in dispatch.rs). The writer swaps the buffer out and writes
//! it with the write deadline. Exceeding max_pending marks the connection a slow consumer
//! and drops its buffer without flushing, as nats-server does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

use crate::error::CloseReason;

/// Buffers larger than this are not kept between writes, so an idle connection that once
/// took a burst gives its memory back.
const KEEP_CAPACITY: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    /// Write what is buffered (e.g. a final -ERR), then close.
    Flush,
    /// Drop what is buffered and close (slow consumer, shutdown of a dead peer).
    Now,
}

#[derive(Debug, Default)]
struct State {
    buf: Vec<u8>,
    closing: Option<Closing>,
    out_msgs: u64,
    out_bytes: u64,
}

/// The outbound side of one connection.
#[derive(Debug)]
pub struct Outbound {
    state: Mutex<State>,
    notify: Notify,
    max_pending: usize,
    /// Set once the writer has stopped; appends after that are dropped.
    dead: AtomicBool,
}

/// Appending would pass max_pending: the connection must be closed as a slow consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowConsumer;

impl Outbound {
    pub fn new(max_pending: usize) -> Self {
        Outbound {
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            max_pending,
            dead: AtomicBool::new(false),
        }
    }

    /// Appends protocol bytes (INFO, PONG, -ERR...). Control traffic is never refused.
    pub fn push(&self, bytes: &[u8]) {
        let mut s = self.state.lock();
        if s.closing.is_none() {
            s.buf.extend_from_slice(bytes);
        }
    }

    /// Appends one message with `write` (which must append exactly `len` bytes or fewer),
    /// counting it in out_msgs/out_bytes. Errs when max_pending would be exceeded.
    #[inline]
    pub fn push_msg(
        &self,
        len: usize,
        payload_len: usize,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> Result<(), SlowConsumer> {
        let mut s = self.state.lock();
        if s.closing.is_some() {
            return Ok(());
        }
        if s.buf.len() + len > self.max_pending {
            return Err(SlowConsumer);
        }
        write(&mut s.buf);
        s.out_msgs += 1;
        s.out_bytes += payload_len as u64;
        Ok(())
    }

    /// Wakes the writer: call once after a batch of appends.
    #[inline]
    pub fn kick(&self) {
        self.notify.notify_one();
    }

    /// Bytes waiting to be written (for /connz pending_bytes).
    pub fn pending(&self) -> usize {
        self.state.lock().buf.len()
    }

    pub fn max_pending(&self) -> usize {
        self.max_pending
    }

    /// (out_msgs, out_bytes) delivered to this connection.
    pub fn counters(&self) -> (u64, u64) {
        let s = self.state.lock();
        (s.out_msgs, s.out_bytes)
    }

    /// Asks the writer to stop; with `flush` the buffered bytes are written first.
    pub fn close(&self, flush: bool) {
        {
            let mut s = self.state.lock();
            let mode = if flush { Closing::Flush } else { Closing::Now };
            match s.closing {
                Some(Closing::Now) => {}
                _ => s.closing = Some(mode),
            }
            if mode == Closing::Now {
                s.buf = Vec::new();
            }
        }
        self.notify.notify_one();
    }

    pub fn is_closing(&self) -> bool {
        self.state.lock().closing.is_some()
    }

    /// Drains the buffer into `w` until closed. Returns why writing stopped, or `None`
    /// when it stopped because `close` was called.
    pub async fn write_loop<W: AsyncWrite + Unpin>(
        &self,
        mut w: W,
        write_deadline: Duration,
    ) -> Option<CloseReason> {
        let mut spare: Vec<u8> = Vec::with_capacity(16 * 1024);
        let result = loop {
            let closing = {
                let mut s = self.state.lock();
                std::mem::swap(&mut s.buf, &mut spare);
                s.closing
            };
            if spare.is_empty() {
                if closing.is_some() {
                    break None;
                }
                self.notify.notified().await;
                continue;
            }
            if closing == Some(Closing::Now) {
                break None;
            }
            // flush: a no-op on TCP, but TLS keeps encrypted records buffered until it.
            let write = async {
                w.write_all(&spare).await?;
                w.flush().await
            };
            match tokio::time::timeout(write_deadline, write).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => break Some(CloseReason::WriteError),
                Err(_) => break Some(CloseReason::SlowConsumerWriteDeadline),
            }
            if spare.capacity() > KEEP_CAPACITY {
                spare = Vec::with_capacity(16 * 1024);
            } else {
                spare.clear();
            }
        };
        self.dead.store(true, Ordering::Release);
        let _ = tokio::time::timeout(Duration::from_millis(200), w.shutdown()).await;
        result
    }
}
