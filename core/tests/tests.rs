//! Every integration test of jitr-core, one binary: one module per
//! area (ripgrep's tests/tests.rs), the fakes and builders they share in
//! `support`.
//! Run one area with `cargo test -p jitr-core --test tests -- NAME::`.

mod admission;
mod deadline;
mod dry_run;
mod events;
mod function_operations;
mod provision_faults;
mod rotation_calls;
mod support;
mod verifier;
