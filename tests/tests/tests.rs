//! Every integration test of jitr-tests, one binary: one module per
//! area (ripgrep's tests/tests.rs), helpers in `tests/src` (the jitr-tests library).
//! Run one area with `cargo test -p jitr-tests --test tests -- NAME::`.

mod admission;
mod aws;
mod aws_semantics;
mod bootstrap;
mod burst;
mod ca;
mod check;
mod claims;
mod connect;
mod deploy;
mod device;
mod docs;
mod doctor;
mod doctor_aws;
mod doctor_docs;
mod events;
mod first_connect;
mod iam;
mod infra;
mod keystore;
mod lambda;
mod lifecycle;
mod model_check;
mod mtls;
mod rotation;
mod sandbox;
mod shares;
mod shell;
mod verifier;
