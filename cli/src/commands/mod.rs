//! One module per command group.

pub mod ca;
pub mod ca_aws;
pub mod check;
pub mod completions;
pub mod connect;
pub mod crl;
pub mod device;
pub mod device_register;
pub mod doctor;
mod doctor_deployment;
mod doctor_endpoint;
pub mod endpoint;
pub mod fleet;
pub mod provision;
pub mod revoke;
pub mod rotate;
