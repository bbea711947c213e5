//! Experiments: the run configuration, the run directory, sweeps of runs, the paper's
//! experiments built from sweeps, hidden-layer maps and the HTML report.

pub mod beyond;
pub mod config;
pub mod hidden;
pub mod inputs;
pub mod pool;
pub mod protocols;
pub mod report;
pub mod reproduce;
pub mod run;
pub mod sweep;
