//! The io_uring backend: one ring per I/O thread, created on that thread.
//!
//! Setup tries SINGLE_ISSUER|DEFER_TASKRUN|COOP_TASKRUN|TASKRUN_FLAG, then
//! COOP_TASKRUN|TASKRUN_FLAG, then no flags, with a CQ four times the SQ so that multishot
//! operations rarely overflow it. It then probes every opcode it uses, registers the
//! provided-buffer ring and does a NOP round trip; any failure makes the caller fall back to
//! epoll. Waits use EXT_ARG timeouts, so no timeout SQEs are needed.
//!
//! This module must never touch an operation's resources beyond reading the pointers the
//! reactor prepared: ownership stays in the reactor's slab until the final completion.

use std::alloc::{self, Layout};
use std::io;
use std::os::fd::IntoRawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use io_uring::{cqueue, opcode, squeue, types, IoUring, Probe};

use super::{BackendCounters, OpState, RawCompletion, IGNORED_KEY};
use crate::bufpool::BufPool;

const BUF_GROUP: u16 = 0;

/// The provided-buffer ring's entry array: page-aligned memory the kernel reads.
struct RingMem {
    base: NonNull<types::BufRingEntry>,
    layout: Layout,
    mask: u16,
    /// Our copy of the tail; published to the shared tail field with a release store.
    tail: u16,
}

impl RingMem {
    fn new(entries: u16) -> io::Result<Self> {
        let size = entries as usize * std::mem::size_of::<types::BufRingEntry>();
        let layout = Layout::from_size_align(size, 4096)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: size is non-zero (entries >= 1); zeroed memory is a valid empty ring.
        let ptr = unsafe { alloc::alloc_zeroed(layout) } as *mut types::BufRingEntry;
        let base = NonNull::new(ptr).ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        Ok(RingMem {
            base,
            layout,
            mask: entries - 1,
            tail: 0,
        })
    }

    fn push(&mut self, addr: u64, len: u32, bid: u16) {
        let idx = (self.tail & self.mask) as usize;
        // SAFETY: idx <= mask < entries, inside the allocation. The kernel only reads entries
        // between its head and the published tail; this slot is past the published tail, so
        // nobody reads it concurrently.
        let entry = unsafe { &mut *self.base.as_ptr().add(idx) };
        entry.set_addr(addr);
        entry.set_len(len);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the base is the page-aligned start of an initialised ring, as `tail` needs;
        // the tail field is a u16 the kernel reads concurrently, so it is written atomically.
        // AtomicU16 has the same layout as u16, and the release store orders the entry writes
        // before the tail the kernel acquires.
        unsafe {
            let tail = types::BufRingEntry::tail(self.base.as_ptr()) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}

impl Drop for RingMem {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; the ring that read it is gone (this
        // field is declared after the ring in UringBackend, so it drops later).
        unsafe { alloc::dealloc(self.base.as_ptr() as *mut u8, self.layout) };
    }
}

pub(crate) struct UringBackend {
    ring: IoUring,
    // Dropped after `ring` (declaration order): the kernel may read it until the ring is gone.
    bufs: RingMem,
    buf_size: u32,
    /// [`BufPool::once_size`]: a single-shot receive's length.
    once_size: u32,
    last_overflow: u32,
    /// Completions reaped early to make room (SQ full while the CQ was full too).
    spill: Vec<RawCompletion>,
    pub(crate) counters: BackendCounters,
    pub(crate) features: Vec<&'static str>,
}

/// Opcodes the engine issues; all must be supported or the fallback is used.
const REQUIRED: &[(u8, &str)] = &[
    (opcode::Nop::CODE, "NOP"),
    (opcode::AcceptMulti::CODE, "ACCEPT"),
    (opcode::Connect::CODE, "CONNECT"),
    (opcode::RecvMulti::CODE, "RECV"),
    (opcode::Recv::CODE, "RECV (single-shot)"),
    (opcode::Send::CODE, "SEND"),
    (opcode::SendMsg::CODE, "SENDMSG"),
    (opcode::Close::CODE, "CLOSE"),
    (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
    (opcode::PollAdd::CODE, "POLL_ADD"),
];

impl UringBackend {
    /// Creates, probes and tests a ring sized for `sq_entries` and `pool`'s buffers.
    pub(crate) fn new(sq_entries: u32, pool: &mut BufPool) -> io::Result<Self> {
        let cq = sq_entries.saturating_mul(4);
        type Attempt = (&'static [&'static str], fn(&mut io_uring::Builder));
        let attempts: [Attempt; 3] = [
            (
                &[
                    "SINGLE_ISSUER",
                    "DEFER_TASKRUN",
                    "COOP_TASKRUN",
                    "TASKRUN_FLAG",
                ],
                |b| {
                    b.setup_single_issuer()
                        .setup_defer_taskrun()
                        .setup_coop_taskrun()
                        .setup_taskrun_flag();
                },
            ),
            (&["COOP_TASKRUN", "TASKRUN_FLAG"], |b| {
                b.setup_coop_taskrun().setup_taskrun_flag();
            }),
            (&[], |_| {}),
        ];
        let mut last_err = None;
        let mut made = None;
        for (names, apply) in attempts {
            let mut builder = IoUring::builder();
            builder.setup_cqsize(cq);
            apply(&mut builder);
            match builder.build(sq_entries) {
                Ok(ring) => {
                    made = Some((ring, names));
                    break;
                }
                Err(e) => last_err = Some(e),
            }
        }
        let (ring, names) = match made {
            Some(m) => m,
            None => {
                return Err(last_err.unwrap_or_else(|| io::Error::other("io_uring setup failed")))
            }
        };
        let mut features: Vec<&'static str> = names.to_vec();
        if !ring.params().is_feature_ext_arg() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "io_uring lacks EXT_ARG (kernel < 5.11)",
            ));
        }
        features.push("EXT_ARG");
        if ring.params().is_feature_nodrop() {
            features.push("NODROP");
        }

        let mut probe = Probe::new();
        ring.submitter().register_probe(&mut probe)?;
        let missing: Vec<&str> = REQUIRED
            .iter()
            .filter(|(code, _)| !probe.is_supported(*code))
            .map(|(_, n)| *n)
            .collect();
        if !missing.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("io_uring lacks opcodes {}", missing.join(", ")),
            ));
        }
        if probe.is_supported(opcode::SendZc::CODE) {
            features.push("SEND_ZC");
        }

        let bufs = RingMem::new(pool.count())?;
        // SAFETY: the ring memory is page-aligned, holds `count` entries and lives in `bufs`,
        // which outlives the ring (field order); it is unregistered implicitly with the ring.
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                bufs.base.as_ptr() as u64,
                pool.count(),
                BUF_GROUP,
                0,
            )?
        };
        features.push("PBUF_RING");

        let mut backend = UringBackend {
            ring,
            bufs,
            buf_size: pool.buf_size() as u32,
            once_size: pool.once_size() as u32,
            last_overflow: 0,
            spill: Vec::new(),
            counters: BackendCounters::default(),
            features,
        };
        backend.nop_round_trip()?;
        backend.provide(pool);
        Ok(backend)
    }

    fn nop_round_trip(&mut self) -> io::Result<()> {
        const NOP_KEY: u64 = 0x004E_4F50;
        let nop = opcode::Nop::new().build().user_data(NOP_KEY);
        // SAFETY: a NOP references no memory.
        unsafe { self.ring.submission().push(&nop) }
            .map_err(|_| io::Error::other("io_uring SQ full at start"))?;
        let ts = types::Timespec::new().sec(1);
        let args = types::SubmitArgs::new().timespec(&ts);
        self.ring.submitter().submit_with_args(1, &args)?;
        match self.ring.completion().next() {
            Some(cqe) if cqe.user_data() == NOP_KEY && cqe.result() >= 0 => Ok(()),
            Some(cqe) => Err(io::Error::other(format!(
                "io_uring NOP completed with {}",
                cqe.result()
            ))),
            None => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "io_uring NOP did not complete",
            )),
        }
    }

    /// Queues one SQE, flushing the SQ to the kernel when it is full.
    fn push(&mut self, entry: squeue::Entry) {
        loop {
            // SAFETY: every pointer in `entry` refers to memory owned by the operation's slot
            // in the reactor (boxed address, boxed msghdr, heap iovec array, the send's buffers
            // in their untouched `Vec`) or by `self`; the reactor keeps it alive and unmoved
            // until the final completion.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return;
            }
            self.counters.sq_full_flushes += 1;
            if let Err(e) = self.ring.submit() {
                if e.raw_os_error() == Some(libc::EBUSY) {
                    // The CQ is full too: reap it into the spill list (delivered by the next
                    // wait) so the kernel can make progress, then retry.
                    self.counters.ebusy_retries += 1;
                    let mut spill = std::mem::take(&mut self.spill);
                    self.reap(&mut spill);
                    self.spill = spill;
                }
            }
        }
    }

    pub(crate) fn submit(&mut self, key: u64, op: &mut OpState) {
        let entry = match op {
            OpState::Accept { fd } => {
                opcode::AcceptMulti::new(types::Fd(std::os::fd::AsRawFd::as_raw_fd(&**fd)))
                    .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
                    .build()
            }
            OpState::Connect { fd, addr, started } => {
                *started = true;
                opcode::Connect::new(
                    types::Fd(std::os::fd::AsRawFd::as_raw_fd(&**fd)),
                    addr.as_ptr(),
                    addr.len(),
                )
                .build()
            }
            OpState::Recv { fd, once: false } => {
                opcode::RecvMulti::new(types::Fd(std::os::fd::AsRawFd::as_raw_fd(&**fd)), BUF_GROUP)
                    .build()
            }
            // One provided buffer (the kernel picks it: no address), one completion, at most
            // `once_size` bytes of it (a selected buffer's read is capped by the length).
            OpState::Recv { fd, once: true } => opcode::Recv::new(
                types::Fd(std::os::fd::AsRawFd::as_raw_fd(&**fd)),
                std::ptr::null_mut(),
                self.once_size,
            )
            .buf_group(BUF_GROUP)
            .build()
            .flags(squeue::Flags::BUFFER_SELECT),
            // MSG_WAITALL: one completion for the rest of the body where the kernel retries
            // partial receives itself; a cancel or end of stream still reports what arrived.
            OpState::RecvInto { fd, buf } => opcode::Recv::new(
                types::Fd(std::os::fd::AsRawFd::as_raw_fd(&**fd)),
                buf.spare_ptr(),
                buf.remaining().min(u32::MAX as usize) as u32,
            )
            .flags(libc::MSG_WAITALL)
            .build(),
            OpState::Send(s) => {
                let fd = types::Fd(s.raw_fd());
                let zc = s.zero_copy;
                let (iov, n) = s.prepare();
                if n == 1 {
                    // SAFETY: prepare() returned one valid iovec.
                    let one = unsafe { *iov };
                    if zc {
                        opcode::SendZc::new(fd, one.iov_base as *const u8, one.iov_len as u32)
                            .flags(libc::MSG_NOSIGNAL)
                            .build()
                    } else {
                        opcode::Send::new(fd, one.iov_base as *const u8, one.iov_len as u32)
                            .flags(libc::MSG_NOSIGNAL)
                            .build()
                    }
                } else if zc {
                    opcode::SendMsgZc::new(fd, &*s.msghdr)
                        .flags(libc::MSG_NOSIGNAL as u32)
                        .build()
                } else {
                    opcode::SendMsg::new(fd, &*s.msghdr)
                        .flags(libc::MSG_NOSIGNAL as u32)
                        .build()
                }
            }
            OpState::Close { fd, raw } => {
                // The kernel closes it: give up ownership so Drop does not close it again.
                if let Some(owned) = fd.take() {
                    *raw = owned.into_raw_fd();
                }
                opcode::Close::new(types::Fd(*raw)).build()
            }
            OpState::Wake { fd } => opcode::PollAdd::new(types::Fd(*fd), libc::POLLIN as u32)
                .multi(true)
                .build(),
        };
        self.push(entry.user_data(key));
    }

    pub(crate) fn cancel(&mut self, key: u64) {
        let entry = opcode::AsyncCancel::new(key).build().user_data(IGNORED_KEY);
        self.push(entry);
    }

    /// Lends every free buffer of the pool to the kernel.
    pub(crate) fn provide(&mut self, pool: &mut BufPool) {
        let mut any = false;
        // Buffer addresses are fixed at the pool's creation: read them before draining.
        let (base, size) = (pool.addr(0) as u64, u64::from(self.buf_size));
        for bid in pool.drain_free() {
            self.bufs
                .push(base + u64::from(bid) * size, self.buf_size, bid);
            any = true;
        }
        if any {
            self.bufs.publish();
        }
    }

    pub(crate) fn wait(
        &mut self,
        timeout: Option<Duration>,
        out: &mut Vec<RawCompletion>,
    ) -> io::Result<()> {
        let res = match timeout {
            // A poll with nothing to submit and no deferred completion work pending needs no
            // io_uring_enter: the completion queue is read from shared memory. (TASKRUN is set
            // by the kernel whenever DEFER/COOP task work waits; without those setups
            // completions are posted without our help. An overflowed CQ needs the syscall.)
            Some(t) if t.is_zero() => {
                let mut sq = self.ring.submission();
                sq.sync();
                if sq.is_empty() && !sq.taskrun() && !sq.cq_overflow() {
                    drop(sq);
                    self.counters.enters_skipped += 1;
                    Ok(0)
                } else {
                    drop(sq);
                    self.ring.submit()
                }
            }
            Some(t) => {
                let ts = types::Timespec::from(t);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
            None => self.ring.submit_and_wait(1),
        };
        match res {
            Ok(_) => {}
            Err(e) => match e.raw_os_error() {
                Some(libc::ETIME) | Some(libc::EINTR) => {}
                Some(libc::EBUSY) => self.counters.ebusy_retries += 1,
                _ => return Err(e),
            },
        }
        out.append(&mut self.spill);
        self.reap(out);
        Ok(())
    }

    fn reap(&mut self, out: &mut Vec<RawCompletion>) {
        let mut cq = self.ring.completion();
        let overflow = cq.overflow();
        if overflow != self.last_overflow {
            self.counters.cq_overflow += overflow.wrapping_sub(self.last_overflow) as u64;
            self.last_overflow = overflow;
        }
        cq.sync();
        for cqe in &mut cq {
            let flags = cqe.flags();
            out.push(RawCompletion {
                key: cqe.user_data(),
                res: cqe.result(),
                more: cqueue::more(flags),
                bid: cqueue::buffer_select(flags),
                notif: cqueue::notif(flags),
            });
        }
    }
}
