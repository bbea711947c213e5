//! Networks: layers with explicit forward and backward passes, the FCN/CNN model, optimizers and
//! the training loop.

pub mod layers;
pub mod model;
pub mod optim;
pub mod train;
