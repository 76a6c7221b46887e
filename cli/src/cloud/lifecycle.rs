//! The AWS IoT verbs of a device certificate's life after registration:
//! describe it and what is attached, revoke and detach it, delete its
//! thing, list a CA's certificates. Each is one call (or one paged list);
//! throttling is retried by the SDK's configuration (`jitr_core::aws`), and
//! DeleteThing waits out DetachThingPrincipal's propagation.

use std::time::Duration;

use aws_sdk_iot::types::CertificateStatus;
use jitr_core::aws::AwsError;
use jitr_core::iot::{CertStatus, Described};

use super::Cloud;

/// One row of ListCertificatesByCA.
#[derive(Debug, Clone)]
pub struct Listed {
    pub certificate_id: String,
    pub status: CertStatus,
    pub created: i64,
}

impl Cloud {
    /// DescribeCertificate, read as the function reads it (jitr-core's
    /// [`Described`]); `None` when AWS IoT has never registered it.
    pub fn device_certificate(&self, id: &str) -> Result<Option<Described>, AwsError> {
        let answer = self.block_on(self.iot.describe_certificate().certificate_id(id).send());
        let Some(out) = self.found(answer)? else {
            return Ok(None);
        };
        Ok(out
            .certificate_description()
            .map(Described::from_description))
    }

    /// The things (ListPrincipalThings) and policies (ListAttachedPolicies)
    /// attached to a certificate ARN, every page.
    pub fn attachments(&self, arn: &str) -> Result<(Vec<String>, Vec<String>), AwsError> {
        let things = self.all_pages(|token| async move {
            let page = self
                .iot
                .list_principal_things()
                .principal(arn)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| self.error(e))?;
            Ok((
                page.things().to_vec(),
                page.next_token().map(str::to_string),
            ))
        })?;
        let policies = self.attached_policies(arn, false)?;
        Ok((things, policies))
    }

    /// The principals of a thing, every page; `None` when there is no such thing.
    pub fn thing_principals(&self, thing: &str) -> Result<Option<Vec<String>>, AwsError> {
        let mut principals = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let answer = self.block_on(
                self.iot
                    .list_thing_principals()
                    .thing_name(thing)
                    .set_next_token(token.clone())
                    .send(),
            );
            let Some(page) = self.found(answer)? else {
                return Ok(None);
            };
            principals.extend(page.principals().iter().cloned());
            token = page
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                return Ok(Some(principals));
            }
        }
    }

    /// UpdateCertificate to REVOKED: the certificate can never connect again.
    pub fn revoke_certificate(&self, id: &str) -> Result<(), AwsError> {
        self.block_on(
            self.iot
                .update_certificate()
                .certificate_id(id)
                .new_status(CertificateStatus::Revoked)
                .send(),
        )
        .map(|_| ())
        .map_err(|e| self.error(e))
    }

    /// RegisterCertificate as REVOKED: a certificate AWS IoT has never seen,
    /// so that it can never be registered (JITR included) and used later.
    /// One already registered meanwhile is [`AwsError::AlreadyExists`].
    pub fn register_revoked(&self, pem: &str, ca_pem: &str) -> Result<(), AwsError> {
        self.block_on(
            self.iot
                .register_certificate()
                .certificate_pem(pem)
                .ca_certificate_pem(ca_pem)
                .status(CertificateStatus::Revoked)
                .send(),
        )
        .map(|_| ())
        .map_err(|e| self.error(e))
    }

    /// DetachPolicy from a certificate ARN (a policy already gone is fine).
    pub fn detach_policy(&self, policy: &str, arn: &str) -> Result<(), AwsError> {
        let answer = self.block_on(
            self.iot
                .detach_policy()
                .policy_name(policy)
                .target(arn)
                .send(),
        );
        self.found(answer).map(|_| ())
    }

    /// DetachThingPrincipal (a thing already gone is fine).
    pub fn detach_thing(&self, thing: &str, arn: &str) -> Result<(), AwsError> {
        let answer = self.block_on(
            self.iot
                .detach_thing_principal()
                .thing_name(thing)
                .principal(arn)
                .send(),
        );
        self.found(answer).map(|_| ())
    }

    /// DeleteThing (a thing already gone is fine). DetachThingPrincipal "is
    /// asynchronous. It might take several seconds for the detachment to
    /// propagate": meanwhile AWS IoT refuses DeleteThing as "still attached
    /// to one or more principals", so that refusal is retried for up to
    /// [`DETACH_PATIENCE`]; if it never clears, the error names the thing
    /// and the principals AWS IoT still lists.
    pub fn delete_thing(&self, thing: &str) -> Result<(), AwsError> {
        let delete = || {
            let answer = self.block_on(self.iot.delete_thing().thing_name(thing).send());
            self.found(answer).map(|_| ())
        };
        match until_detached(delete, detach_waits(DETACH_PATIENCE), std::thread::sleep) {
            Err(AwsError::Refused { code, message }) if is_still_attached(&code, &message) => {
                let principals = self.thing_principals(thing)?.unwrap_or_default();
                Err(AwsError::Refused {
                    code,
                    message: still_attached_message(thing, &principals, &message),
                })
            }
            other => other,
        }
    }

    /// ListCertificatesByCA, every page, every status.
    pub fn certificates_of_ca(&self, ca_id: &str) -> Result<Vec<Listed>, AwsError> {
        self.all_pages(|marker| async move {
            let page = self
                .iot
                .list_certificates_by_ca()
                .ca_certificate_id(ca_id)
                .set_marker(marker)
                .page_size(250)
                .send()
                .await
                .map_err(|e| self.error(e))?;
            let rows = page
                .certificates()
                .iter()
                .map(|c| Listed {
                    certificate_id: c.certificate_id().unwrap_or_default().to_string(),
                    status: c
                        .status()
                        .map(CertStatus::from_sdk)
                        .unwrap_or_else(|| CertStatus::Unknown(String::new())),
                    created: c.creation_date().map(|t| t.secs()).unwrap_or_default(),
                })
                .collect();
            Ok((rows, page.next_marker().map(str::to_string)))
        })
    }
}

/// How long DeleteThing waits for detachments to propagate (AWS: "several seconds").
pub(crate) const DETACH_PATIENCE: Duration = Duration::from_secs(30);

/// AWS IoT's refusal of DeleteThing while principals are attached
/// (InvalidRequestException, "Cannot delete. Thing NAME is still attached to
/// one or more principals").
fn is_still_attached(code: &str, message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    code == "InvalidRequestException"
        && message.contains("attached")
        && message.contains("principal")
}

/// The waits between DeleteThing attempts: 500 ms doubling to 4 s, adding up
/// to at most `patience`.
fn detach_waits(patience: Duration) -> impl Iterator<Item = Duration> {
    let mut total = Duration::ZERO;
    (0u32..)
        .map(|i| Duration::from_millis(500) * 2u32.pow(i.min(3)))
        .take_while(move |w| {
            total += *w;
            total <= patience
        })
}

/// Calls `delete` again after each wait while it is refused for principals
/// still attached; any other answer, or the last refusal, is the answer.
fn until_detached(
    mut delete: impl FnMut() -> Result<(), AwsError>,
    waits: impl IntoIterator<Item = Duration>,
    mut sleep: impl FnMut(Duration),
) -> Result<(), AwsError> {
    let mut waits = waits.into_iter();
    loop {
        match delete() {
            Err(AwsError::Refused { code, message }) if is_still_attached(&code, &message) => {
                match waits.next() {
                    Some(wait) => sleep(wait),
                    None => return Err(AwsError::Refused { code, message }),
                }
            }
            other => return other,
        }
    }
}

/// The refusal that never cleared, naming the thing and what is attached.
fn still_attached_message(thing: &str, principals: &[String], aws: &str) -> String {
    let listed = if principals.is_empty() {
        "AWS IoT now lists none: run the command again".to_string()
    } else {
        format!("still attached: {}", principals.join(", "))
    };
    format!(
        "thing {thing} was not deleted after {} s of waiting for its principals' detachment to propagate ({listed}); AWS IoT said: {aws}",
        DETACH_PATIENCE.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(thing: &str) -> AwsError {
        AwsError::Refused {
            code: "InvalidRequestException".into(),
            message: format!(
                "Cannot delete. Thing {thing} is still attached to one or more principals"
            ),
        }
    }

    #[test]
    fn waits_double_to_four_seconds_within_the_patience() {
        let waits: Vec<u128> = detach_waits(Duration::from_secs(30))
            .map(|w| w.as_millis())
            .collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 4000, 4000, 4000, 4000, 4000]);
        assert!(waits.iter().sum::<u128>() <= 30_000);
        assert_eq!(detach_waits(Duration::from_millis(100)).count(), 0);
    }

    #[test]
    fn delete_thing_is_retried_while_the_detachment_propagates() {
        let mut answers = vec![Ok(()), Err(refusal("t")), Err(refusal("t"))];
        let mut slept = Vec::new();
        let got = until_detached(
            || answers.pop().unwrap(),
            detach_waits(DETACH_PATIENCE),
            |w| slept.push(w.as_millis()),
        );
        assert_eq!(got, Ok(()));
        assert_eq!(slept, [500, 1000]);
    }

    #[test]
    fn a_refusal_that_never_clears_is_the_answer_after_the_waits() {
        let mut calls = 0;
        let got = until_detached(
            || {
                calls += 1;
                Err(refusal("t"))
            },
            detach_waits(Duration::from_secs(7)),
            |_| {},
        );
        assert_eq!(got, Err(refusal("t")));
        assert_eq!(calls, 4, "first try and three waits (0.5 + 1 + 2 + 4 > 7)");
    }

    #[test]
    fn other_answers_are_not_retried() {
        for answer in [
            AwsError::Refused {
                code: "InvalidRequestException".into(),
                message: "bad name".into(),
            },
            AwsError::Refused {
                code: "VersionConflictException".into(),
                message: "attached principal".into(),
            },
            AwsError::AccessDenied {
                code: "UnauthorizedException".into(),
                message: "no".into(),
            },
        ] {
            let mut calls = 0;
            let got = until_detached(
                || {
                    calls += 1;
                    Err(answer.clone())
                },
                detach_waits(DETACH_PATIENCE),
                |_| panic!("no wait for {answer:?}"),
            );
            assert_eq!(got, Err(answer.clone()));
            assert_eq!(calls, 1);
        }
    }

    #[test]
    fn the_final_refusal_names_the_thing_and_its_principals() {
        let m = still_attached_message(
            "robot-1",
            &["arn:a".into(), "arn:b".into()],
            "Cannot delete.",
        );
        assert!(
            m.contains("thing robot-1") && m.contains("arn:a, arn:b"),
            "{m}"
        );
        assert!(m.contains("30 s") && m.ends_with("Cannot delete."), "{m}");
        let m = still_attached_message("robot-1", &[], "x");
        assert!(m.contains("run the command again"), "{m}");
    }
}
