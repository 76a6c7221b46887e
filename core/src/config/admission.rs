//! Which certificates are admitted: the allow-list and its table, the CAs,
//! the clock skew tolerated, and what becomes of a certificate refused.

use super::error::{err, ConfigError};
use super::read::{list, number_in, one_of, Get};
use super::{Admission, OnReject};

/// Default `JITR_CLOCK_SKEW_SECONDS`: five minutes.
const DEFAULT_CLOCK_SKEW_SECONDS: i64 = 300;
/// Largest accepted skew: a day (more is a wrong clock, not skew).
const MAX_CLOCK_SKEW_SECONDS: i64 = 86_400;

/// `JITR_ADMISSION`: any (the default) or allow-list.
pub(super) fn mode(get: Get) -> Result<Admission, ConfigError> {
    one_of(
        get,
        "JITR_ADMISSION",
        Admission::Any,
        &[
            ("any", Admission::Any),
            ("allow-list", Admission::AllowList),
        ],
    )
}

/// `JITR_ALLOW_LIST_TABLE`: required under allow-list, where nothing could
/// be admitted without it.
pub(super) fn allow_list_table(
    get: Get,
    admission: Admission,
) -> Result<Option<String>, ConfigError> {
    let table = get("JITR_ALLOW_LIST_TABLE");
    if admission == Admission::AllowList && table.is_none() {
        return Err(err(
            "JITR_ALLOW_LIST_TABLE",
            "is required with JITR_ADMISSION=allow-list: the allow-list table's name",
        ));
    }
    Ok(table)
}

/// `JITR_ALLOWED_CA_IDS`: CA certificate ids, lowercase; empty: any CA.
pub(super) fn allowed_ca_ids(get: Get) -> Result<Vec<String>, ConfigError> {
    let ids: Vec<String> = list(get("JITR_ALLOWED_CA_IDS"))
        .into_iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    if let Some(bad) = ids.iter().find(|id| !crate::rules::is_certificate_id(id)) {
        return Err(err(
            "JITR_ALLOWED_CA_IDS",
            format!("\"{bad}\" is not a CA certificate id (64 hex digits)"),
        ));
    }
    Ok(ids)
}

/// `JITR_ON_REJECT`: revoke (the default) or ignore.
pub(super) fn on_reject(get: Get) -> Result<OnReject, ConfigError> {
    one_of(
        get,
        "JITR_ON_REJECT",
        OnReject::Revoke,
        &[("revoke", OnReject::Revoke), ("ignore", OnReject::Ignore)],
    )
}

/// `JITR_CLOCK_SKEW_SECONDS`: 0 to a day.
pub(super) fn clock_skew(get: Get) -> Result<i64, ConfigError> {
    number_in(
        get,
        "JITR_CLOCK_SKEW_SECONDS",
        DEFAULT_CLOCK_SKEW_SECONDS,
        0..=MAX_CLOCK_SKEW_SECONDS,
        "seconds",
    )
}

#[cfg(test)]
mod tests {
    use crate::config::tests::config;

    /// Under allow-list without its table nothing could be admitted: the
    /// function (and `jitr provision`/`reconcile`) refuse to start.
    #[test]
    fn the_allow_list_needs_its_table() {
        for (vars, table) in [
            (vec![("JITR_ADMISSION", "allow-list")], Err(())),
            (
                vec![
                    ("JITR_ADMISSION", "allow-list"),
                    ("JITR_ALLOW_LIST_TABLE", "  "),
                ],
                Err(()),
            ),
            (
                vec![
                    ("JITR_ADMISSION", "allow-list"),
                    ("JITR_ALLOW_LIST_TABLE", "t"),
                ],
                Ok(Some("t")),
            ),
            // The templates set the table under either mode.
            (vec![("JITR_ALLOW_LIST_TABLE", "t")], Ok(Some("t"))),
            (vec![("JITR_ADMISSION", "any")], Ok(None)),
        ] {
            let mut vars = vars.clone();
            vars.push(("JITR_POLICY_NAME", "p"));
            match (config(&vars), table) {
                (Ok(c), Ok(table)) => assert_eq!(c.allow_list_table.as_deref(), table),
                (Err(e), Err(())) => {
                    assert_eq!(e.variable, "JITR_ALLOW_LIST_TABLE", "{vars:?}");
                    assert_eq!(
                        e.to_string(),
                        "configuration JITR_ALLOW_LIST_TABLE: is required with \
                         JITR_ADMISSION=allow-list: the allow-list table's name"
                    );
                }
                (got, _) => panic!("{vars:?}: {got:?}"),
            }
        }
    }
}
