//! What goes wrong talking to a PKCS#11 token, in words a user can act on.

use cryptoki::error::Error as P11Error;

/// What went wrong talking to the token; shown after "key store pkcs11: ".
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenError {
    #[error("cannot load the PKCS#11 module {path}: {reason}")]
    Module { path: String, reason: String },
    #[error("no initialised token labelled \"{token}\" in {module} (tokens present: {present})")]
    NoToken {
        token: String,
        module: String,
        present: String,
    },
    #[error("another run is making a key on token \"{token}\" and still holds {lock} after {waited}; run again once it is done")]
    Busy {
        token: String,
        lock: String,
        waited: String,
    },
    #[error("token \"{0}\" refused the PIN (expected the user PIN)")]
    WrongPin(String),
    #[error("token \"{token}\" has no private key labelled \"{label}\"")]
    NoKey { token: String, label: String },
    #[error("the key \"{label}\" on token \"{token}\" is {found}, expected {expected} (--key)")]
    WrongKind {
        token: String,
        label: String,
        found: String,
        expected: String,
    },
    #[error("token \"{token}\" already holds a key labelled \"{label}\" (pass --pkcs11-key-label \"{label}\" to adopt it, or choose another label)")]
    Taken { token: String, label: String },
    #[error("token \"{token}\" holds {count} {kind} keys labelled \"{label}\": jitr cannot tell which belongs to the CA (give each key pair its own label)")]
    Ambiguous {
        token: String,
        label: String,
        count: usize,
        kind: &'static str,
    },
    #[error("{action} failed on token \"{token}\": {reason}")]
    Call {
        token: String,
        action: &'static str,
        reason: String,
    },
}

/// Maps a cryptoki error of `action` on `token` to [`TokenError::Call`].
pub(super) fn call<'a>(
    token: &'a str,
    action: &'static str,
) -> impl Fn(P11Error) -> TokenError + 'a {
    move |e| TokenError::Call {
        token: token.to_string(),
        action,
        reason: e.to_string(),
    }
}
