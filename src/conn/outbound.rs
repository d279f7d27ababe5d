//! Per-connection send buffer shared by every publisher that delivers to this
//! connection, and the write loop that drains it.
//!
//! Publishers append under a short mutex (no I/O under it) and flush once per read batch
//! (see `Pcd` in dispatch.rs). On a plain TCP connection the flush writes the socket
//! directly with a non-blocking write from the flushing task (nats-server's
//! flushClients): no task wake-up on the request/reply path. Whatever the socket does not
//! take at once, or any other kind of stream (TLS), is left to the connection's writer
//! task, which waits for writability within the write deadline. Exceeding max_pending
//! marks the connection a slow consumer and drops its buffer without flushing, as
//! nats-server does.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
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
    /// A plain TCP socket that flushes may write directly.
    direct: OnceLock<Arc<Direct>>,
    /// Bytes taken out of `state.buf` but not yet written (counted in pending).
    inflight_len: AtomicUsize,
}

/// The write side of a TCP connection shared by the writer task and direct flushes.
#[derive(Debug)]
struct Direct {
    sock: OwnedWriteHalf,
    /// Bytes taken from the buffer and not yet fully written; its lock orders writes,
    /// so two flushers never interleave bytes on the socket.
    inflight: Mutex<Inflight>,
}

#[derive(Debug, Default)]
struct Inflight {
    data: Vec<u8>,
    pos: usize,
}

/// What a flush attempt achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flushed {
    /// Everything buffered is on the socket.
    All,
    /// The socket is full (or another flusher holds it): the writer task must go on.
    Partly,
    /// The connection is closing without flushing.
    Dropped,
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
            direct: OnceLock::new(),
            inflight_len: AtomicUsize::new(0),
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
        if s.buf.len() + self.inflight_len.load(Ordering::Relaxed) + len > self.max_pending {
            return Err(SlowConsumer);
        }
        write(&mut s.buf);
        s.out_msgs += 1;
        s.out_bytes += payload_len as u64;
        Ok(())
    }

    /// Flushes after a batch of appends: writes the socket directly when it is plain
    /// TCP and free, else (or for what does not fit) wakes the writer task.
    #[inline]
    pub fn kick(&self) {
        if let Some(d) = self.direct.get() {
            if let Some(mut inflight) = d.inflight.try_lock() {
                if let Ok(Flushed::All | Flushed::Dropped) = self.flush_direct(d, &mut inflight) {
                    return;
                }
            }
        }
        self.notify.notify_one();
    }

    /// Wakes the writer task without writing here (used past a few receivers per
    /// batch, so a fan-out does not serialize every write on the publisher's thread).
    #[inline]
    pub fn signal(&self) {
        self.notify.notify_one();
    }

    /// Writes buffered bytes with non-blocking writes until the socket is full or the
    /// buffer is empty. The caller holds the inflight lock.
    fn flush_direct(&self, d: &Direct, inf: &mut Inflight) -> io::Result<Flushed> {
        loop {
            if inf.pos == inf.data.len() {
                inf.pos = 0;
                if inf.data.capacity() > KEEP_CAPACITY {
                    inf.data = Vec::with_capacity(16 * 1024);
                } else {
                    inf.data.clear();
                }
                let mut s = self.state.lock();
                if s.closing == Some(Closing::Now) {
                    self.inflight_len.store(0, Ordering::Relaxed);
                    return Ok(Flushed::Dropped);
                }
                std::mem::swap(&mut s.buf, &mut inf.data);
                drop(s);
                if inf.data.is_empty() {
                    self.inflight_len.store(0, Ordering::Relaxed);
                    return Ok(Flushed::All);
                }
            }
            match d.sock.try_write(&inf.data[inf.pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => inf.pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.inflight_len
                        .store(inf.data.len() - inf.pos, Ordering::Relaxed);
                    return Ok(Flushed::Partly);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Bytes waiting to be written (for /connz pending_bytes and the stall check).
    pub fn pending(&self) -> usize {
        self.state.lock().buf.len() + self.inflight_len.load(Ordering::Relaxed)
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

    /// The writer task of a plain TCP connection: flushes may write directly (see
    /// `kick`); this task takes over when the socket is full, waiting for writability
    /// within the write deadline, and closes the socket at the end.
    pub async fn write_loop_tcp(
        &self,
        sock: OwnedWriteHalf,
        write_deadline: Duration,
    ) -> Option<CloseReason> {
        let d = Arc::new(Direct {
            sock,
            inflight: Mutex::new(Inflight::default()),
        });
        // Only this task sets it.
        let _ = self.direct.set(d.clone());
        let result = loop {
            let flushed = {
                let mut inf = d.inflight.lock();
                self.flush_direct(&d, &mut inf)
            };
            match flushed {
                Err(_) => break Some(CloseReason::WriteError),
                Ok(Flushed::Dropped) => break None,
                Ok(Flushed::All) => {
                    if self.state.lock().closing.is_some() {
                        break None;
                    }
                    self.notify.notified().await;
                }
                Ok(Flushed::Partly) => {
                    match tokio::time::timeout(write_deadline, d.sock.writable()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => break Some(CloseReason::WriteError),
                        Err(_) => break Some(CloseReason::SlowConsumerWriteDeadline),
                    }
                }
            }
        };
        self.dead.store(true, Ordering::Release);
        // The socket may outlive this task (a cached subscription still points at the
        // connection), so end it explicitly: the peer sees EOF now.
        let _ = socket2::SockRef::from(d.sock.as_ref()).shutdown(std::net::Shutdown::Both);
        result
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
