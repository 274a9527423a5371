use super::{Harness, Outcome, SimOptions};

pub(crate) fn run(seed: u64, _opts: &SimOptions) -> Outcome {
    let h = Harness::new(seed, 1, 10, |_| {});
    h.outcome("todo", vec![])
}
