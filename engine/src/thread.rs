//! Spawning zeroring's own threads (I/O threads, helpers) with every signal blocked, and
//! with the context's scheduling settings.
//!
//! Owns: the signal mask a zeroring thread is born with, and the scheduling a new I/O thread
//! applies to itself before its first work ([`ThreadSched`]: libzmq's THREAD_SCHED_POLICY,
//! THREAD_PRIORITY and THREAD_AFFINITY_CPU_ADD/REMOVE). libzmq blocks all signals on its
//! threads so that a process-directed signal (SIGALRM, SIGINT, SIGCHLD, …) runs the
//! application's handler on an application thread, where it can interrupt a blocking call,
//! never on an I/O thread. Must never: leave the spawning thread's own mask changed, or fail
//! a thread because the kernel refused a scheduling request (an unprivileged process may not
//! raise priorities): a refusal is logged and the thread runs with what it has.

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

/// How an I/O thread schedules itself (zmq_ctx_set's thread options). The defaults change
/// nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadSched {
    /// ZMQ_THREAD_SCHED_POLICY (`SCHED_OTHER`, `SCHED_FIFO`, `SCHED_RR`, `SCHED_BATCH`, …);
    /// −1 keeps the inherited policy.
    pub policy: i32,
    /// ZMQ_THREAD_PRIORITY: the real-time priority under `SCHED_FIFO`/`SCHED_RR`; under any
    /// other policy libzmq lowers the thread's nice value to −20 instead. −1 keeps it.
    pub priority: i32,
    /// ZMQ_THREAD_AFFINITY_CPU_ADD/REMOVE: the CPUs every I/O thread may run on (libzmq sets
    /// the whole set on each thread); empty: any.
    pub cpus: Vec<usize>,
}

impl Default for ThreadSched {
    fn default() -> Self {
        ThreadSched {
            policy: -1,
            priority: -1,
            cpus: Vec::new(),
        }
    }
}

impl ThreadSched {
    /// Applies the settings to the calling thread, as libzmq's `thread_t` does when it
    /// starts. Each refusal (EPERM without CAP_SYS_NICE, EINVAL for a CPU the machine lacks)
    /// is returned, after every other setting was still tried.
    pub fn apply_to_current(&self) -> Vec<io::Error> {
        let mut errors = Vec::new();
        if !self.cpus.is_empty() {
            if let Err(e) = set_affinity(&self.cpus) {
                errors.push(e);
            }
        }
        if self.policy == -1 && self.priority == -1 {
            return errors;
        }
        // SAFETY: sched_param is plain data; pthread_getschedparam/setschedparam read and
        // write live locals for the calling thread (pthread_self is always valid).
        unsafe {
            let me = libc::pthread_self();
            let mut policy = 0;
            let mut param: libc::sched_param = std::mem::zeroed();
            let rc = libc::pthread_getschedparam(me, &mut policy, &mut param);
            if rc != 0 {
                errors.push(io::Error::from_raw_os_error(rc));
                return errors;
            }
            if self.policy != -1 {
                policy = self.policy;
            }
            let realtime = policy == libc::SCHED_FIFO || policy == libc::SCHED_RR;
            if self.priority != -1 {
                // Only real-time policies have priorities; the others take 0.
                param.sched_priority = if realtime { self.priority } else { 0 };
            }
            let rc = libc::pthread_setschedparam(me, policy, &param);
            if rc != 0 {
                errors.push(io::Error::from_raw_os_error(rc));
            }
            if !realtime && self.priority != -1 {
                // libzmq: "assume the user wants to decrease the thread's nice value".
                // Linux's nice value is per thread: PRIO_PROCESS with this thread's id.
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                if libc::setpriority(libc::PRIO_PROCESS, tid, -20) != 0 {
                    errors.push(io::Error::last_os_error());
                }
            }
        }
        errors
    }
}

/// Lets the calling thread run on `cpus` only.
fn set_affinity(cpus: &[usize]) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data, zeroed is its empty set; CPU_SET is bounds-checked
    // below against the set's capacity; sched_setaffinity reads the live local.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let capacity = 8 * std::mem::size_of::<libc::cpu_set_t>();
        for &cpu in cpus {
            if cpu >= capacity {
                return Err(io::Error::from_raw_os_error(libc::EINVAL));
            }
            libc::CPU_SET(cpu, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
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
    fn default_sched_changes_nothing_and_batch_needs_no_privilege() {
        let t = spawn("zeroring-sched".into(), || {
            assert!(ThreadSched::default().apply_to_current().is_empty());
            let errors = ThreadSched {
                policy: libc::SCHED_BATCH,
                ..ThreadSched::default()
            }
            .apply_to_current();
            // SAFETY: reads this thread's policy into live locals.
            let policy = unsafe {
                let mut policy = 0;
                let mut param: libc::sched_param = std::mem::zeroed();
                libc::pthread_getschedparam(libc::pthread_self(), &mut policy, &mut param);
                policy
            };
            (errors.len(), policy)
        })
        .unwrap();
        assert_eq!(t.join().unwrap(), (0, libc::SCHED_BATCH));
    }

    #[test]
    fn an_impossible_cpu_is_refused_not_fatal() {
        let t = spawn("zeroring-sched".into(), || {
            ThreadSched {
                cpus: vec![1 << 20],
                ..ThreadSched::default()
            }
            .apply_to_current()
            .len()
        })
        .unwrap();
        assert_eq!(t.join().unwrap(), 1);
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
