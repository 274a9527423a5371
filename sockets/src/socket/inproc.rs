//! inproc bind and connect: the two sides meet through the context's registry, in either order
//! (a connect before its bind waits there as pending, as libzmq's does).

use super::*;

impl Driver {
    pub(super) fn bind_inproc(&mut self, name: &str, uri: &str) -> Result<()> {
        let info = self.inproc_info();
        let pending = {
            let mut reg = self.ctx.inproc();
            if reg.bound.contains_key(name) {
                return Err(Error::EADDRINUSE);
            }
            reg.bound.insert(
                name.to_string(),
                Bound {
                    info: info.clone(),
                    sender: self.mailbox.sender(),
                },
            );
            reg.pending.remove(name).unwrap_or_default()
        };
        self.sc.options.last_endpoint = uri.to_string();
        // Like libzmq, inproc peers are not checked for compatible socket types (only the
        // ZMTP handshake checks them): test_inproc_connect connects PAIR sockets to a PULL.
        for mut p in pending {
            // The pipes were made with the connecter's HWMs alone; now each direction gets the
            // sum of both ends' (libzmq's `set_hwms_boost`), as a connect after the bind would:
            // this socket's writer locally, the connecter's writer by credit from this
            // socket's reader (which wakes it if it filled the pipe at its own mark).
            let conflate = p.connector.conflate || info.conflate;
            let mut out_boost = 0;
            if !conflate {
                out_boost = p.connector.rcvhwm.max(0) as usize;
                p.writer.set_hwm(writer_hwm(info.sndhwm, out_boost));
                p.reader.adjust_writer_hwm(hwm_share(info.rcvhwm));
            }
            if let Some((w, r, sender)) = p.deferred {
                let peer = Peer {
                    routing_id: p
                        .connect_routing_id
                        .clone()
                        .or_else(|| Some(info.routing_id.clone())),
                    socket_type: info.socket_type,
                    metadata: None,
                    endpoint: p.endpoint.clone(),
                    conflate: p.connector.conflate || info.conflate,
                    key: None,
                };
                if sender
                    .send(Command::Attach(Box::new(PeerAttachment::new(w, r, peer))))
                    .is_err()
                {
                    continue;
                }
            }
            let peer = Peer {
                routing_id: Some(p.connector.routing_id.clone()),
                socket_type: p.connector.socket_type,
                metadata: None,
                endpoint: p.endpoint,
                conflate: p.connector.conflate || info.conflate,
                key: None,
            };
            self.attach(PeerAttachment::new(p.writer, p.reader, peer).with_out_boost(out_boost));
        }
        Ok(())
    }

    pub(super) fn connect_inproc(&mut self, name: &str, uri: &str) -> Result<()> {
        let me = self.inproc_info();
        let connect_rid = self.sc.options.connect_routing_id.take();
        let mut reg = self.ctx.inproc();
        let bound = reg
            .bound
            .get(name)
            .map(|b| (b.info.clone(), b.sender.clone()));
        if let Some((peer_info, sender)) = bound {
            // No socket-type check on inproc, as libzmq (see bind_inproc).
            let (mine, theirs) =
                inproc_pair(&side(&me), connect_rid.clone(), &side(&peer_info), uri);
            if sender.send(Command::Attach(Box::new(theirs))).is_ok() {
                drop(reg);
                self.attach(mine);
                self.sc.options.last_endpoint = uri.to_string();
                return Ok(());
            }
            // The binder is closing (its mailbox is shut): treat the name as unbound.
            reg.bound.remove(name);
        }
        // Nobody bound yet: queue the connection; the bind attaches it.
        let hwm = |a: i32| if me.conflate { 0 } else { a.max(0) as usize };
        let (c2b_w, c2b_r) = pipe::<Msg>(PipeConfig::with_hwm(hwm(me.sndhwm)));
        let (b2c_w, b2c_r) = pipe::<Msg>(PipeConfig::with_hwm(hwm(me.rcvhwm)));
        self.sc.options.last_endpoint = uri.to_string();
        // IMMEDIATE does not defer an inproc connection: libzmq attaches its pipe at connect
        // whether or not the name is bound (its inproc connection completes then), so sends
        // queue for the binder to come, IMMEDIATE or not. Only a ROUTER that must learn the
        // binder's routing id waits (libzmq keeps that pipe anonymous until the id arrives).
        let defer = me.socket_type == SocketType::Router && connect_rid.is_none();
        let pending = |deferred| Pending {
            connector: me.clone(),
            writer: b2c_w,
            reader: c2b_r,
            deferred,
            connect_routing_id: connect_rid.clone(),
            endpoint: uri.to_string(),
        };
        if defer {
            let p = pending(Some((c2b_w, b2c_r, self.mailbox.sender())));
            reg.pending.entry(name.to_string()).or_default().push(p);
            return Ok(());
        }
        let p = pending(None);
        reg.pending.entry(name.to_string()).or_default().push(p);
        drop(reg);
        self.attach(PeerAttachment::new(
            c2b_w,
            b2c_r,
            Peer {
                routing_id: connect_rid,
                socket_type: me.socket_type,
                metadata: None,
                endpoint: uri.to_string(),
                conflate: me.conflate,
                key: None,
            },
        ));
        Ok(())
    }
}

/// What the pipe pair of an inproc connection needs to know of one side.
fn side(i: &InprocInfo) -> InprocSide {
    InprocSide {
        socket_type: i.socket_type,
        routing_id: i.routing_id.clone(),
        sndhwm: i.sndhwm,
        rcvhwm: i.rcvhwm,
        conflate: i.conflate,
    }
}
