//! zeroring-sim: deterministic fault simulation (the `[sim]` issue).
//!
//! It will run zeroring's own sans-IO ZMTP connections and socket patterns on turmoil hosts and
//! replay network faults from a seed. Nothing is implemented yet: this crate is a placeholder in
//! the workspace so that the dependency graph is fixed from the start.
