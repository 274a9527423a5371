//! Integration tests: each socket type's specification over inproc, after libzmq's own test
//! suite (spec_*, hwm, pubsub, xpub_*, router_*, conflate, req_*, timeo, inproc_connect), plus a
//! multi-threaded stress test. One test binary, so the suite links once.

mod common;

mod context;
mod dealer_router;
mod hwm;
mod inproc;
mod options;
mod pair;
mod poll;
mod proxy;
mod pubsub;
mod pushpull;
mod readiness;
mod reqrep;
mod stress;
mod timeo;
mod xpub;
