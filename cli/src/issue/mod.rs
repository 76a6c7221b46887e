//! Device issuance: which devices ([`names`]), where their files go
//! ([`layout`]), issuing them in parallel ([`batch`]) and the record of what
//! is on disk ([`manifest`]); devices are built in a run's [`staging`]
//! directory; signing is kept under the key store's rate by
//! `jitr_core::ratelimit`'s blocking face.

pub(crate) mod batch;
pub mod csr;
pub(crate) mod layout;
pub(crate) mod manifest;
pub mod names;
pub(crate) mod progress;
pub(crate) mod staging;
