//! Shared logic of jitr, used by the `jitr` CLI and the JITR Lambda.
//!
//! - [`facts`]: what a certificate says, read with a real X.509 parser.
//! - [`pem`]: splitting PEM bundles into DER certificates.
//! - [`rules`]: what AWS IoT and TLS peers accept (key sizes, signature
//!   algorithms, thing names).
//! - Provisioning, pure to impure: [`event`] (the registration event),
//!   [`config`] (environment settings; [`naming`]: thing-name templates), [`plan`] (facts + config -> plan,
//!   no I/O), [`iot`] (the AWS IoT calls behind a trait), [`provision`]
//!   (the plan carried out, activation last; [`outcome`]: how it ended), [`handler`] (direct and SQS
//!   invocations), [`deadline`] (work stops before the invocation's).
//! - [`aws`]: SDK configuration and errors (`quick`: the clients that
//!   give up within seconds); [`ratelimit`]: API rate limits;
//!   [`quota`]: the operations and the account's rate for each;
//!   [`pacing`]: calls kept to the instance's share of those rates;
//!   [`recent`]: certificates the instance activated, not described again
//!   ([`expiring`]: the bounded memory it and the claims keep);
//!   [`claims`]: one instance provisions a certificate, the others
//!   acknowledge its duplicate events ([`claims_table`]: in DynamoDB);
//!   [`lane`]: the fast lane defers to the bulk lane while it works;
//!   [`admission`]: the allow-list ([`allow_list_table`]: in DynamoDB);
//!   [`verifier`]: the verifier hook ([`verifier_function`]: a Lambda function);
//!   [`random`]: jitter and instance names (not cryptography).
//! - [`events`]: one EventBridge event per change made to a certificate
//!   ([`events_sdk`]: PutEvents).

pub mod admission;
pub mod allow_list_table;
pub mod aws;
pub mod claims;
pub mod claims_table;
pub mod clock;
pub mod config;
#[cfg(test)]
mod counting_iot;
pub mod deadline;
pub mod event;
pub mod events;
pub mod events_sdk;
pub mod expiring;
pub mod facts;
pub mod handler;
pub mod iot;
pub mod lane;
pub mod naming;
pub mod outcome;
pub mod pacing;
pub mod pem;
pub mod plan;
pub mod provision;
pub(crate) mod quick;
pub mod quota;
pub mod random;
pub mod ratelimit;
pub mod recent;
pub mod rules;
pub mod verifier;
pub mod verifier_function;

pub use facts::{CertFacts, FactsError, KeyKind, SignatureKind};
