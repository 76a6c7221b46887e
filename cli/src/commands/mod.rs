//! One module per command group.

pub(crate) mod allow;
pub(crate) mod book;
pub(crate) mod ca;
pub(crate) mod ca_aws;
pub(crate) mod check;
pub(crate) mod completions;
pub(crate) mod connect;
pub(crate) mod crl;
pub(crate) mod device;
pub(crate) mod device_register;
pub(crate) mod doctor;
mod doctor_deployment;
mod doctor_endpoint;
pub(crate) mod endpoint;
pub(crate) mod fleet;
pub(crate) mod provision;
pub(crate) mod revoke;
pub(crate) mod rotate;
