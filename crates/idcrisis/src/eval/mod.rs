//! Evaluation: the probe set a trained network is run on, and the scores of its outputs.

pub mod metrics;
pub mod probe;
