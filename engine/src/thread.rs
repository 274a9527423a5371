//! Spawning zeroring's own threads (I/O threads, helpers) with every signal blocked.
//!
//! Owns: the signal mask a zeroring thread is born with. libzmq blocks all signals on its
//! threads so that a process-directed signal (SIGALRM, SIGINT, SIGCHLD, …) runs the
//! application's handler on an application thread, where it can interrupt a blocking call,
//! never on an I/O thread. Must never: leave the spawning thread's own mask changed.

use std::io;
use std::thread::{Builder, JoinHandle};

/// Spawns a thread named `name` whose signal mask blocks every signal from its first
/// instruction: the caller's mask is filled around `pthread_create` (a new thread inherits
/// its creator's mask), then restored. Signals sent to the caller meanwhile stay pending and
/// are delivered when its mask is restored.
pub fn spawn<F, T>(name: String, f: F) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let _restore = BlockAll::new();
    Builder::new().name(name).spawn(f)
}

/// Blocks every signal on this thread until dropped, then puts the old mask back.
struct BlockAll {
    old: Option<libc::sigset_t>,
}

impl BlockAll {
    fn new() -> Self {
        // SAFETY: sigset_t is plain data; sigfillset initialises `all` fully; pthread_sigmask
        // reads `all` and writes the previous mask into `old`, both live locals.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            if libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old) == 0 {
                BlockAll { old: Some(old) }
            } else {
                BlockAll { old: None }
            }
        }
    }
}

impl Drop for BlockAll {
    fn drop(&mut self) {
        if let Some(old) = &self.old {
            // SAFETY: `old` is the mask pthread_sigmask returned; restoring it is always valid.
            unsafe {
                libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(sig: i32) -> bool {
        // SAFETY: queries this thread's mask into a live local; sigismember reads it.
        unsafe {
            let mut cur: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_SETMASK, std::ptr::null(), &mut cur);
            libc::sigismember(&cur, sig) == 1
        }
    }

    #[test]
    fn spawned_threads_block_signals_and_the_caller_keeps_its_mask() {
        let before = blocked(libc::SIGUSR1);
        let t = spawn("zeroring-test".into(), || {
            [libc::SIGINT, libc::SIGALRM, libc::SIGUSR1, libc::SIGTERM]
                .iter()
                .all(|&s| blocked(s))
        })
        .unwrap();
        assert!(t.join().unwrap(), "every signal blocked on the new thread");
        assert_eq!(blocked(libc::SIGUSR1), before, "caller's mask restored");
    }
}
