//! A device certificate's life after issuance: which devices to rotate
//! ([`rotation`]), what revoking one changes ([`revocation`]), the list of
//! what jitr revoked ([`revoked`]) and a CA's fleet in AWS IoT ([`fleet`]).
//! Decisions only; files and AWS calls are the commands' and `cloud::lifecycle`'s.

pub mod fleet;
pub mod revocation;
pub mod revoked;
pub mod rotation;
