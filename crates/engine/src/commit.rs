//! Group commit: durable writers share flushes. Each durable write takes a
//! ticket after it is applied; it returns once a flush that started after
//! the ticket was issued has completed. One waiter flushes at a time and
//! covers every ticket issued before it started; the rest wait for it.

use std::sync::{Condvar, Mutex, MutexGuard};

use crate::error::Result;

#[derive(Default)]
struct State {
    /// Last ticket issued.
    issued: u64,
    /// Every ticket `<= flushed` is on disk.
    flushed: u64,
    /// A flush is in progress.
    flushing: bool,
}

#[derive(Default)]
pub struct GroupCommit {
    state: Mutex<State>,
    done: Condvar,
}

impl GroupCommit {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is plain counters, valid even if a holder panicked.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Call after a write is applied; the ticket orders it against flushes.
    pub fn ticket(&self) -> u64 {
        let mut s = self.lock();
        s.issued += 1;
        s.issued
    }

    /// Block until `ticket` is durable, running `flush` if nobody else is.
    pub fn wait(&self, ticket: u64, flush: impl FnOnce() -> Result<()>) -> Result<()> {
        let mut s = self.lock();
        loop {
            if s.flushed >= ticket {
                return Ok(());
            }
            if !s.flushing {
                s.flushing = true;
                let target = s.issued;
                drop(s);
                // Reset `flushing` even if `flush` panics, or waiters would hang.
                let leader = Leader {
                    commit: self,
                    target,
                    ok: false,
                };
                let result = flush();
                leader.finish(result.is_ok());
                // On error the waiters retry the flush themselves.
                return result;
            }
            s = self.done.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Make everything written so far durable.
    pub fn sync(&self, flush: impl FnOnce() -> Result<()>) -> Result<()> {
        let ticket = self.ticket();
        self.wait(ticket, flush)
    }
}

struct Leader<'a> {
    commit: &'a GroupCommit,
    target: u64,
    ok: bool,
}

impl Leader<'_> {
    fn finish(mut self, ok: bool) {
        self.ok = ok;
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        let mut s = self.commit.lock();
        s.flushing = false;
        if self.ok {
            s.flushed = s.flushed.max(self.target);
        }
        self.commit.done.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{EngineError, ErrorCode};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[test]
    fn concurrent_waiters_share_flushes() {
        let gc = Arc::new(GroupCommit::default());
        let flushes = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (gc, flushes) = (gc.clone(), flushes.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        gc.sync(|| {
                            flushes.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(1));
                            Ok(())
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let n = flushes.load(Ordering::SeqCst);
        // 800 tickets; waiters piggyback on in-flight flushes.
        assert!((1..800).contains(&n), "flushes: {n}");
    }

    #[test]
    fn failed_flush_is_retried_by_waiter() {
        let gc = GroupCommit::default();
        let t = gc.ticket();
        let e = gc
            .wait(t, || Err(EngineError::new(ErrorCode::Io, "disk")))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Io);
        gc.wait(t, || Ok(())).unwrap();
        // Already covered: no flush needed.
        gc.wait(t, || panic!("must not flush")).unwrap();
    }
}
