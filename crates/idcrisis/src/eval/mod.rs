//! Evaluation: the probe set a trained network is run on, the scores of its outputs, and the
//! attractors of the net iterated on its own output.

pub mod attractor;
pub mod metrics;
pub mod probe;
