//! The commands, one file per command (a directory per group, one file per
//! subcommand): each holds its clap arguments, their one conversion to what
//! the domain modules take, and `run`. No command imports another: what
//! two share lives below them (`pki`, `cloud`, `lifecycle`, `issue`,
//! `doctor`, `mqtt`, `report`; shared flag groups in `crate::flags`).

pub(crate) mod ca;
pub(crate) mod check;
pub(crate) mod completions;
pub(crate) mod connect;
pub(crate) mod device;
pub(crate) mod doctor;
pub(crate) mod endpoint;
pub(crate) mod fleet;
pub(crate) mod man;
pub(crate) mod provision;
pub(crate) mod reconcile;
