//! Offline PKI: keys, subjects, certificate profiles, the CA directory and
//! what its CA revoked.

pub(crate) mod amazon;
pub(crate) mod ca_dir;
pub(crate) mod ca_files;
pub(crate) mod ca_report;
pub(crate) mod ca_write;
pub(crate) mod encrypted;
pub(crate) mod issuer;
pub(crate) mod keys;
pub(crate) mod profile;
pub mod revoked;
pub(crate) mod secret;
pub(crate) mod store;
pub mod subject;
