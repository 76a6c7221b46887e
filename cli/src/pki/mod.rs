//! Offline PKI: keys, subjects, certificate profiles and the CA directory.

pub mod amazon;
pub mod ca_dir;
pub mod ca_write;
pub mod keys;
pub mod profile;
pub mod store;
pub mod subject;
