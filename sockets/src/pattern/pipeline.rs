//! PUSH and PULL (RFC 30): PUSH load-balances to its peers and blocks (EAGAIN) when all are at
//! their high-water mark; PULL fair-queues from its peers.

use zeroring_engine::Msg;

use super::fq::Fq;
use super::lb::Lb;
use super::{count_sent, drop_dead, Pattern, PatternCx, Pipe, Pipes, SendError};
use crate::error::Result;

/// PUSH.
#[derive(Debug, Default)]
pub struct Push {
    pipes: Pipes,
    lb: Lb,
}

impl Push {
    /// [`Pattern::send`] past its fast path.
    #[inline(never)]
    fn send_full(
        &mut self,
        msg: Msg,
        cx: &mut PatternCx<'_>,
    ) -> std::result::Result<(), SendError> {
        let more = msg.more();
        let r = self.lb.send(&mut self.pipes, msg);
        drop_dead(&mut self.pipes, cx);
        count_sent(&r, more, cx);
        r.map(|_| ())
    }

    /// [`Pattern::send_slice`] past its fast path. (No direct write for PUSH: see
    /// `Lb::send_slice`.)
    #[inline(never)]
    fn send_slice_full(&mut self, data: &[u8], more: bool, cx: &mut PatternCx<'_>) -> Result<()> {
        let r = self
            .lb
            .send_slice::<false>(&mut self.pipes, data, more, cx.stats);
        drop_dead(&mut self.pipes, cx);
        r
    }
}

impl Pattern for Push {
    fn attach(&mut self, pipe: Pipe, cx: &mut PatternCx<'_>) {
        cx.stats.peers_attached += 1;
        self.pipes.push(pipe);
    }

    fn send(&mut self, msg: Msg, cx: &mut PatternCx<'_>) -> std::result::Result<(), SendError> {
        // As `send_slice`: a path with no call in it first, then the full one.
        match self.lb.send_msg_ready(&mut self.pipes, msg) {
            Ok(woke) => {
                cx.stats.sent += 1;
                if woke {
                    return self.pipes.wake_first();
                }
                Ok(())
            }
            Err(msg) => self.send_full(msg, cx),
        }
    }

    fn send_slice(&mut self, data: &[u8], more: bool, cx: &mut PatternCx<'_>) -> Result<()> {
        // A path with no call in it first (as PULL's receive), then the full one.
        if !more {
            if let Some(woke) = self.lb.send_slice_ready(&mut self.pipes, data) {
                cx.stats.sent += 1;
                if woke {
                    return self.pipes.wake_first();
                }
                return Ok(());
            }
        }
        self.send_slice_full(data, more, cx)
    }

    fn has_in(&mut self, _cx: &mut PatternCx<'_>) -> bool {
        false
    }

    fn has_out(&mut self, _cx: &mut PatternCx<'_>) -> bool {
        self.lb.has_out(&mut self.pipes)
    }

    fn disconnect(&mut self, endpoint: &str, cx: &mut PatternCx<'_>) -> usize {
        let n = self.pipes.kill_endpoint(endpoint);
        drop_dead(&mut self.pipes, cx);
        n
    }

    fn peers(&self) -> usize {
        self.pipes.live()
    }

    fn pipes_mut(&mut self) -> Option<&mut super::Pipes> {
        Some(&mut self.pipes)
    }
}

/// PULL.
#[derive(Debug, Default)]
pub struct Pull {
    pipes: Pipes,
    fq: Fq,
}

impl Pattern for Pull {
    fn attach(&mut self, pipe: Pipe, cx: &mut PatternCx<'_>) {
        cx.stats.peers_attached += 1;
        self.pipes.push(pipe);
    }

    fn recv(&mut self, cx: &mut PatternCx<'_>) -> Result<Msg> {
        let r = self.fq.recv(&mut self.pipes);
        drop_dead(&mut self.pipes, cx);
        let (m, _) = r?;
        if !m.more() {
            cx.stats.received += 1;
        }
        Ok(m)
    }

    fn recv_into(&mut self, out: &mut Msg, cx: &mut PatternCx<'_>) -> Result<()> {
        self.fq.recv_counted(&mut self.pipes, out, cx)
    }

    fn has_in(&mut self, _cx: &mut PatternCx<'_>) -> bool {
        self.fq.has_in(&mut self.pipes)
    }

    fn has_out(&mut self, _cx: &mut PatternCx<'_>) -> bool {
        false
    }

    fn disconnect(&mut self, endpoint: &str, cx: &mut PatternCx<'_>) -> usize {
        let n = self.pipes.kill_endpoint(endpoint);
        self.fq.forget_disconnected(&self.pipes);
        drop_dead(&mut self.pipes, cx);
        n
    }

    fn peers(&self) -> usize {
        self.pipes.live()
    }

    fn pipes_mut(&mut self) -> Option<&mut super::Pipes> {
        Some(&mut self.pipes)
    }

    fn ready_list(&self) -> Option<std::sync::Arc<super::fq::ReadyList>> {
        Some(self.fq.ready_list())
    }
}
