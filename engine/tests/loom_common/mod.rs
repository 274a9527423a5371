//! What the loom models share (the models live in `engine/tests/loom_*.rs`).

/// `loom::model` with the preemption bound from `LOOM_MAX_PREEMPTIONS`, or 3 when it is unset
/// (unbounded exploration of these models takes far too long).
pub fn model<F: Fn() + Sync + Send + 'static>(f: F) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    b.check(f);
}
