//! Offline PKI: keys, subjects, certificate profiles and the CA directory.

pub(crate) mod amazon;
pub(crate) mod ca_dir;
pub(crate) mod ca_write;
pub(crate) mod keys;
pub(crate) mod profile;
pub(crate) mod store;
pub mod subject;
