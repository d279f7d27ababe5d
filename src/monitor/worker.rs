//! The thread that writes the large monitoring documents (the /connz JSON).
//!
//! A 10k-connection /connz page is a few milliseconds of CPU. On tokio's blocking pool
//! it never held an async worker, but it competed for CPU with the client and route
//! tasks at equal weight. This thread runs in the kernel's idle class (`SCHED_IDLE` on
//! Linux): monitoring uses the CPU the message path leaves over, and a saturated server
//! answers it later rather than moving fewer messages. The kernel still gives an
//! idle-class thread a small share when every core is busy, so requests are answered.
//! `connz-load` (docs/benchmarks.md) measures the message rate while /connz is polled.
//!
//! Jobs sent here must take no lock that the message path takes: a thread this low
//! preempted while holding one would hold up the connection waiting for it (priority
//! inversion). /connz therefore copies what it shows out of the connections first, on
//! the blocking pool at normal priority, and only writes JSON here.
//!
//! One thread per monitoring listener: requests to it are served in order, as they
//! mostly are in nats-server (which builds these documents under its server lock).

use std::sync::mpsc;

type Job = Box<dyn FnOnce() + Send>;

pub(crate) struct Worker {
    jobs: mpsc::Sender<Job>,
}

impl Worker {
    /// Starts the thread; it ends when the `Worker` is dropped.
    pub(crate) fn start() -> Worker {
        let (jobs, rx) = mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("tern-monitor".into())
            .spawn(move || {
                lower_priority();
                for job in rx {
                    // A panicking document builder fails its own request (its answer
                    // channel is dropped), not every later one.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            });
        if let Err(e) = spawned {
            tracing::error!("Could not start the monitoring thread: {e}");
        }
        Worker { jobs }
    }

    /// Runs `f` on the monitoring thread; `None` if it could not run or panicked.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        self.jobs.send(job).ok()?;
        rx.await.ok()
    }
}

/// Moves the calling thread to the idle scheduling class (Linux), leaving it as it is
/// elsewhere or when the kernel refuses.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn lower_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param for
    // SCHED_IDLE (priority 0), read only for the duration of the call.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if rc != 0 {
        tracing::debug!(
            "monitoring thread keeps normal priority: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_and_survives_a_panic() {
        let w = Worker::start();
        assert_eq!(w.run(|| 6 * 7).await, Some(42));
        let panicked: Option<()> = w.run(|| panic!("document builder failed")).await;
        assert_eq!(panicked, None);
        assert_eq!(w.run(|| "still serving").await, Some("still serving"));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_thread_is_in_the_idle_class() {
        let w = Worker::start();
        // proc(5): field 41 of /proc/thread-self/stat is the policy; 5 is SCHED_IDLE.
        // Fields are counted after the parenthesised command name (field 2).
        let stat = w
            .run(|| std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default())
            .await
            .unwrap_or_default();
        let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let policy = after_comm.split_whitespace().nth(41 - 3);
        assert_eq!(policy, Some("5"), "{stat:?}");
    }
}
