//! The layering of `sockets/src` (docs/architecture.md): the sans-IO cores at the bottom, the
//! drivers above, no circle among the files. Read from the sources: every `crate::NAME` path
//! outside comments is an edge from the file to module NAME.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module → the modules of this crate it names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut add = |module: &str, text: &str| {
        let deps = g.entry(module.to_string()).or_default();
        for line in text.lines() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for (i, _) in line.match_indices("crate::") {
                let name: String = line[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module {
                    deps.insert(name);
                }
            }
        }
    };
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            for f in std::fs::read_dir(&path).unwrap() {
                add(&name, &std::fs::read_to_string(f.unwrap().path()).unwrap());
            }
        } else if name != "lib" {
            add(&name, &std::fs::read_to_string(&path).unwrap());
        }
    }
    g
}

#[test]
fn the_socket_core_depends_on_no_driver() {
    let g = graph();
    let core = &g["core"];
    for driver in [
        "context", "socket", "wire", "zap", "monitor", "poll", "asynch", "proxy",
    ] {
        assert!(!core.contains(driver), "core.rs uses {driver}: {core:?}");
    }
}

#[test]
fn no_circle_among_the_files() {
    let g = graph();
    // Depth-first search for a back edge.
    fn visit(
        g: &BTreeMap<String, BTreeSet<String>>,
        n: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if done.contains(n) {
            return;
        }
        if let Some(i) = path.iter().position(|p| p == n) {
            panic!("circle: {:?} -> {n}", &path[i..]);
        }
        path.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            if g.contains_key(m) {
                visit(g, m, path, done);
            }
        }
        path.pop();
        done.insert(n.to_string());
    }
    let mut done = BTreeSet::new();
    for n in g.keys() {
        visit(&g, n, &mut Vec::new(), &mut done);
    }
    assert!(g.len() > 10, "read the sources: {g:?}");
}
