//! Checks of the issuing CA in AWS IoT: registered, where (account and
//! region), status, auto-registration, mode, validity. Pure: the command
//! passes in what it read.

use aws_sdk_iot::types::{AutoRegistrationStatus, CaCertificateStatus, CertificateMode};

use super::fixes::Known;
use super::Check;
use crate::cloud::ca::CaView;

/// The issuing CA as found: its id, what AWS says of it, and its validity.
pub struct CaSeen<'a> {
    pub id: &'a str,
    /// `jitr ca register` argument for the fix (the CA directory, else the id).
    pub target: &'a str,
    pub view: Option<&'a CaView>,
    /// (notBefore, notAfter) of the CA certificate, when known.
    pub validity: Option<(i64, i64)>,
    /// Registered CAs higher in the chain (e.g. the root), by id.
    pub registered_above: &'a [String],
    /// Where calls go: the region, and the caller's account when STS told it.
    pub region: &'a str,
    pub account: Option<&'a str>,
    /// (account, region) the CA directory's `aws.json` records it registered in.
    pub recorded: Option<(&'a str, &'a str)>,
    /// The values the fixes' commands carry.
    pub known: &'a Known,
    /// Its issuer's revocation of it: (the issuer's `revoked.json`, when).
    pub revoked_by_issuer: Option<(&'a str, &'a str)>,
}

/// (account, region) in an ARN (`arn:PARTITION:SERVICE:REGION:ACCOUNT:...`).
pub fn arn_place(arn: &str) -> (&str, &str) {
    let mut parts = arn.split(':').skip(3);
    let region = parts.next().unwrap_or_default();
    (parts.next().unwrap_or_default(), region)
}

/// The CA is registered where the calls go: this account and region.
fn account_check(ca: &CaSeen) -> Option<Check> {
    const NAME: &str = "ca account and region";
    let here = |account: &str| account.is_empty() || ca.account.is_none_or(|a| a == account);
    let (account, region, source) = match (ca.view, ca.recorded) {
        (Some(view), _) => {
            let (account, region) = arn_place(&view.arn);
            (account, region, "its ARN")
        }
        (None, Some((account, region))) => (account, region, "aws.json of the CA directory"),
        (None, None) => return None,
    };
    let caller = ca.account.unwrap_or("?");
    if here(account) && (region.is_empty() || region == ca.region) {
        // Not registered although recorded here: "ca registered" says so.
        return ca
            .view
            .map(|_| Check::pass(NAME, format!("account {caller}, region {}", ca.region)));
    }
    Some(Check::fail(
        NAME,
        format!(
            "CA {} is registered in account {account}, region {region} ({source}); calls go to account {caller}, region {}",
            ca.id, ca.region
        ),
        format!(
            "use a profile of account {account} (--profile) and --region {region}, or register the CA here (jitr ca register {})",
            ca.target
        ),
    ))
}

pub fn ca_checks(ca: &CaSeen, now: i64) -> Vec<Check> {
    let place = account_check(ca);
    let Some(view) = ca.view else {
        return std::iter::once(unregistered(ca)).chain(place).collect();
    };
    let mut out = vec![Check::pass(
        "ca registered",
        format!("{} ({})", view.certificate_id, view.arn),
    )];
    out.extend(place);
    out.push(status_check(ca, view));
    out.push(
        if view.auto_registration == Some(AutoRegistrationStatus::Enable) {
            Check::pass("ca auto-registration", "ENABLE")
        } else {
            Check::fail(
                "ca auto-registration",
                format!(
                    "{}: devices signed by it are refused instead of registered",
                    or_unknown(view.auto_registration.as_ref().map_or("", |a| a.as_str()))
                ),
                ca.known
                    .jitr(&format!("ca auto-registration enable {}", ca.target)),
            )
        },
    );
    out.push(if view.mode == CertificateMode::SniOnly {
        Check::warn(
            "ca mode",
            "SNI_ONLY: devices must send SNI (the endpoint's host name) to be matched to this CA",
            "make sure the device's TLS stack sends SNI (connect by host name, not IP)",
        )
    } else {
        Check::pass("ca mode", view.mode.as_str())
    });
    if let Some((not_before, not_after)) = ca.validity {
        out.push(if (not_before..=not_after).contains(&now) {
            Check::pass(
                "ca validity",
                format!("valid until {}", super::device::date(not_after)),
            )
        } else {
            Check::fail(
                "ca validity",
                format!(
                    "not valid now (valid {} to {})",
                    super::device::date(not_before),
                    super::device::date(not_after)
                ),
                "create a new CA (jitr ca create), register it and issue devices from it",
            )
        });
    }
    out
}

/// The CA is not registered here: which one, and how to register it.
fn unregistered(ca: &CaSeen) -> Check {
    let detail = if ca.registered_above.is_empty() {
        format!(
            "CA {} is not registered in this account and region ({})",
            ca.id, ca.region
        )
    } else {
        format!(
            "CA {} (the one that signed the device) is not registered; only its issuer {} is, and AWS IoT registers devices under the CA that signed them",
            ca.id,
            ca.registered_above.join(", ")
        )
    };
    // `jitr ca register` takes the CA's directory, which only --ca names.
    let register = if ca.target == ca.id {
        format!(
            "register it from its CA directory: {}",
            ca.known.jitr("ca register CA_DIR")
        )
    } else {
        ca.known.jitr(&format!("ca register {}", ca.target))
    };
    Check::fail("ca registered", detail, register)
}

/// The CA's status: ACTIVE, unless its issuer revoked it (then INACTIVE).
fn status_check(ca: &CaSeen, view: &CaView) -> Check {
    if let Some((file, when)) = ca.revoked_by_issuer {
        // Its issuer revoked it: INACTIVE is right, ACTIVE is the fault.
        if view.status == CaCertificateStatus::Active {
            Check::fail(
                "ca revoked by issuer",
                format!("ACTIVE in AWS IoT, but its issuer revoked it at {when} ({file}): AWS IoT still registers the devices it signs"),
                ca.known.jitr(&format!("ca deactivate {}", ca.target)),
            )
        } else {
            Check::pass(
                "ca revoked by issuer",
                format!(
                    "{} in AWS IoT, as its issuer's revocation at {when} ({file}) asks",
                    view.status.as_str()
                ),
            )
        }
    } else if view.status == CaCertificateStatus::Active {
        Check::pass("ca status", "ACTIVE")
    } else {
        Check::fail(
            "ca status",
            format!("{}: AWS IoT refuses its devices", view.status.as_str()),
            ca.known.jitr(&format!("ca activate {}", ca.target)),
        )
    }
}

pub(super) fn or_unknown(s: &str) -> String {
    if s.is_empty() {
        "unknown".into()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::super::Status::{self, *};
    use super::*;

    fn ca(status: &str, auto: &str, mode: &str) -> CaView {
        CaView {
            certificate_id: "c".into(),
            arn: "arn:aws:iot:eu-west-1:1:cacert/c".into(),
            status: CaCertificateStatus::from(status),
            auto_registration: Some(AutoRegistrationStatus::from(auto)),
            mode: CertificateMode::from(mode),
            pem: String::new(),
        }
    }

    fn statuses(checks: &[Check]) -> Vec<(&'static str, Status)> {
        checks.iter().map(|c| (c.name, c.status)).collect()
    }

    static KNOWN: Known = Known {
        region: String::new(),
        profile: None,
        endpoint_url: None,
    };

    fn seen<'a>(view: Option<&'a CaView>, above: &'a [String]) -> CaSeen<'a> {
        CaSeen {
            id: "c",
            target: "int",
            view,
            validity: Some((0, 100)),
            registered_above: above,
            region: "eu-west-1",
            account: Some("1"),
            recorded: None,
            known: &KNOWN,
            revoked_by_issuer: None,
        }
    }

    #[test]
    fn ca_faults_each_fail_their_own_check() {
        let healthy = ca("ACTIVE", "ENABLE", "DEFAULT");
        let checks = ca_checks(&seen(Some(&healthy), &[]), 50);
        assert!(checks.iter().all(|c| c.status == Pass), "{checks:?}");
        assert!(statuses(&checks).contains(&("ca account and region", Pass)));
        let cases: [(CaView, &str, Status); 3] = [
            (ca("INACTIVE", "ENABLE", "DEFAULT"), "ca status", Fail),
            (
                ca("ACTIVE", "DISABLE", "DEFAULT"),
                "ca auto-registration",
                Fail,
            ),
            (ca("ACTIVE", "ENABLE", "SNI_ONLY"), "ca mode", Warn),
        ];
        for (view, name, status) in cases {
            let checks = ca_checks(&seen(Some(&view), &[]), 50);
            for (n, s) in statuses(&checks) {
                assert_eq!(s, if n == name { status } else { Pass }, "{n} for {view:?}");
            }
        }
        // Revoked by its issuer: ACTIVE fails, INACTIVE is as it should be.
        for (status, want) in [("ACTIVE", Fail), ("INACTIVE", Pass)] {
            let view = ca(status, "ENABLE", "DEFAULT");
            let checks = ca_checks(
                &CaSeen {
                    revoked_by_issuer: Some(("root/revoked.json", "2026-01-02T03:04:05Z")),
                    ..seen(Some(&view), &[])
                },
                50,
            );
            for (n, s) in statuses(&checks) {
                let expected = if n == "ca revoked by issuer" {
                    want
                } else {
                    Pass
                };
                assert_eq!(s, expected, "{n} when {status}: {checks:?}");
            }
            assert!(checks.iter().any(
                |c| c.name == "ca revoked by issuer" && c.detail.contains("root/revoked.json")
            ));
            if want == Fail {
                let fix = checks.iter().find_map(|c| c.fix.clone()).unwrap();
                assert_eq!(fix, "jitr ca deactivate int");
            }
        }
        let above = ["root".to_string()];
        let missing = ca_checks(&seen(None, &above), 50);
        assert_eq!(statuses(&missing), [("ca registered", Fail)]);
        assert!(
            missing[0].detail.contains("root")
                && missing[0].fix.as_deref() == Some("jitr ca register int")
        );
        let expired = ca_checks(
            &CaSeen {
                validity: Some((0, 10)),
                ..seen(Some(&healthy), &[])
            },
            50,
        );
        assert!(statuses(&expired).contains(&("ca validity", Fail)));
    }

    #[test]
    fn the_ca_must_be_registered_where_the_calls_go() {
        let healthy = ca("ACTIVE", "ENABLE", "DEFAULT");
        let place = |s: CaSeen| {
            ca_checks(&s, 50)
                .into_iter()
                .find(|c| c.name == "ca account and region")
        };
        // Described here, but its ARN names another region or account.
        let other_region = place(CaSeen {
            region: "us-east-1",
            ..seen(Some(&healthy), &[])
        })
        .unwrap();
        assert_eq!(other_region.status, Fail);
        assert!(other_region.fix.unwrap().contains("--region eu-west-1"));
        let other_account = place(CaSeen {
            account: Some("2"),
            ..seen(Some(&healthy), &[])
        })
        .unwrap();
        assert_eq!(other_account.status, Fail, "{other_account:?}");
        // Not registered here; aws.json says where it is.
        let elsewhere = place(CaSeen {
            recorded: Some(("3", "ap-south-1")),
            ..seen(None, &[])
        })
        .unwrap();
        assert_eq!(elsewhere.status, Fail);
        assert!(elsewhere.detail.contains("account 3, region ap-south-1"));
        assert!(elsewhere.fix.unwrap().contains("account 3"));
        // Recorded here but not registered: "ca registered" alone says so.
        assert!(place(CaSeen {
            recorded: Some(("1", "eu-west-1")),
            ..seen(None, &[])
        })
        .is_none());
        // No account from STS: the region alone decides.
        let unknown_caller = place(CaSeen {
            account: None,
            ..seen(Some(&healthy), &[])
        })
        .unwrap();
        assert_eq!(unknown_caller.status, Pass);
        assert_eq!(
            arn_place("arn:aws:iot:eu-west-1:1:cacert/c"),
            ("1", "eu-west-1")
        );
    }
}
