use zeroring::{Context, SocketType};
fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with("VmRSS"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}
#[test]
fn mem() {
    let ctx = Context::new();
    ctx.set_max_sockets(5000).unwrap();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let r1 = rss_kib();
    let ep = pull.get_last_endpoint().unwrap().unwrap();
    let n = 2000;
    let mut v = Vec::new();
    for _ in 0..n {
        let s = ctx.socket(SocketType::Push).unwrap();
        s.connect(&ep).unwrap();
        v.push(s);
    }
    for s in &v {
        s.send("x", 0).unwrap();
    }
    pull.set_rcvtimeo(20000).unwrap();
    for _ in 0..n {
        pull.recv_bytes(0).unwrap();
    }
    let r2 = rss_kib();
    eprintln!("per connection: {} B", (r2 - r1) * 1024 / n);
}
