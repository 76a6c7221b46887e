//! Shared logic of jitr, used by the `jitr` CLI and the JITR Lambda.
//!
//! - [`facts`]: what a certificate says, read with a real X.509 parser.
//! - [`pem`]: splitting PEM bundles into DER certificates.
//! - [`rules`]: what AWS IoT and TLS peers accept (key sizes, signature
//!   algorithms, thing names).

pub mod aws;
pub mod facts;
pub mod pem;
pub mod ratelimit;
pub mod rules;

pub use facts::{CertFacts, FactsError, KeyKind, SignatureKind};
