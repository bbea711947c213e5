//! Networks: layers with explicit forward and backward passes, the FCN/CNN model, optimizers and
//! the training loop, alone or for a group of nets in lockstep ([`group`]).

pub mod group;
pub mod layers;
pub mod model;
pub mod optim;
pub mod train;
