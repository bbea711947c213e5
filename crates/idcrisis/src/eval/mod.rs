//! Evaluation: the probe set a trained network is run on, the scores of its outputs, and the
//! attractors of the net iterated on its own output (with the eigenvalues of their Jacobians).

pub mod attractor;
pub mod eigen;
pub mod metrics;
pub mod probe;
