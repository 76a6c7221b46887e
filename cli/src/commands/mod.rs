//! One module per command group.

pub mod ca;
pub mod check;
pub mod device;
