//! Shared logic of jitr, used by the `jitr` CLI and the JITR Lambda.
//!
//! - [`facts`]: what a certificate says, read with a real X.509 parser.
//! - [`pem`]: splitting PEM bundles into DER certificates.
//! - [`rules`]: what AWS IoT and TLS peers accept (key sizes, signature
//!   algorithms, thing names).
//! - Provisioning, pure to impure: [`event`] (the registration event),
//!   [`config`] (environment settings; [`naming`]: thing-name templates), [`plan`] (facts + config -> plan,
//!   no I/O), [`iot`] (the AWS IoT calls behind a trait), [`provision`]
//!   (the plan carried out, activation last), [`handler`] (direct and SQS
//!   invocations), [`deadline`] (work stops before the invocation's).
//! - [`aws`]: SDK configuration and errors; [`ratelimit`]: API rate limits;
//!   [`pacing`]: calls kept to the instance's share of the account's quotas;
//!   [`recent`]: certificates the instance activated, not described again;
//!   [`claims`]: one instance provisions a certificate, the others
//!   acknowledge its duplicate events ([`claims_table`]: in DynamoDB);
//!   [`lane`]: the fast lane defers to the bulk lane while it works;
//!   [`admission`]: the allow-list ([`allow_list_table`]: in DynamoDB).

pub mod admission;
pub mod allow_list_table;
pub mod aws;
pub mod claims;
pub mod claims_table;
pub mod clock;
pub mod config;
pub mod deadline;
pub mod event;
pub mod facts;
pub mod handler;
pub mod iot;
pub mod lane;
pub mod naming;
pub mod pacing;
pub mod pem;
pub mod plan;
pub mod provision;
pub mod ratelimit;
pub mod recent;
pub mod rules;

pub use facts::{CertFacts, FactsError, KeyKind, SignatureKind};
