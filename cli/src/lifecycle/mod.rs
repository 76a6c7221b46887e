//! A device certificate's life after issuance: which devices to rotate
//! ([`rotation`]) and the runs of it not finished ([`journal`]), what
//! revoking one changes ([`revocation`]) and a CA's fleet in AWS IoT
//! ([`fleet`]). The list of what jitr revoked is `crate::pki::revoked`
//! (the CA's CRL is signed from it).
//! Decisions, but for `successor.rs`, which builds a rotation's successors
//! on disk; AWS calls are the commands' and `cloud::lifecycle`'s.

pub mod allow_list;
pub mod fleet;
pub(crate) mod journal;
pub mod revocation;
pub mod rotation;
pub(crate) mod successor;
