//! One module per command group.

pub(crate) mod ca;
pub(crate) mod ca_aws;
pub(crate) mod check;
pub(crate) mod completions;
pub(crate) mod connect;
pub(crate) mod device;
pub(crate) mod device_register;
pub(crate) mod doctor;
pub(crate) mod endpoint;
pub(crate) mod provision;
