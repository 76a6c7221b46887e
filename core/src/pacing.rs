//! Pacing AWS IoT calls under the account's per-operation quotas. The quota
//! is the account's: every instance of the function (and every person and
//! tool using the account's IoT API) draws from it, so a function that
//! discovers the quota by being throttled also throttles everyone else.
//! Each instance therefore keeps to its share: the account rate divided by
//! the instances working now ([`Share`]: counted by heartbeats in the claims
//! table, at most the template's `MaxConcurrency`), or divided by
//! `MaxConcurrency` when nothing counts them.

use std::collections::HashMap;

use aws_sdk_iot::types::CertificateStatus;

use crate::aws::AwsError;
use crate::iot::{Described, IotApi};
use crate::quota::{ApiRates, Op};
use crate::ratelimit::RateLimiter;

/// How many instances share the account's rates now: every instance's
/// pacer divides the rates by it. Starts at the most that may run at once
/// (`MaxConcurrency`: safe before anything is known) and follows the count
/// of instances working, kept between 1 and that most. Shared by the pacer
/// and what counts the instances (the claims table's heartbeats).
#[derive(Debug, Clone)]
pub struct Share(std::sync::Arc<(std::sync::atomic::AtomicU32, u32)>);

impl Share {
    /// At most `most` instances run at once (at least 1).
    pub fn new(most: u32) -> Self {
        let most = most.max(1);
        Share(std::sync::Arc::new((most.into(), most)))
    }

    /// `working` instances draw from the rates now (this one included).
    pub fn set_working(&self, working: u32) {
        let (now, most) = &*self.0;
        now.store(
            working.clamp(1, *most),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// The instances the rates are divided among now.
    pub fn sharers(&self) -> u32 {
        self.0 .0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The first wait before a retry, doubled for each one after it.
const RETRY_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);
/// The longest wait before a retry.
const RETRY_BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// An [`IotApi`] whose calls wait for their operation's slot: at most the
/// given rate per operation leaves this process, retries included.
pub struct Paced<A> {
    inner: A,
    limiters: [RateLimiter; 8],
    /// Divides the limiters' rates (1 for a pacer given its share).
    share: Share,
    /// Transient failures (throttling, 5xx, timeouts) retried, each retry
    /// in a slot of its own.
    retries: u32,
}

impl<A: IotApi> Paced<A> {
    /// Paces `inner` at `rates` (already this instance's share), each
    /// operation's first slot at a random point of its first interval, so
    /// instances starting together do not all call at once.
    pub fn new(inner: A, rates: &ApiRates) -> Self {
        Self::with_phase(inner, rates, |_| crate::random::unit())
    }

    /// Paces `inner` at `rates`, each operation's first slot `phase(op)` (0
    /// to 1) of an interval after its first call (and after each idle spell).
    pub fn with_phase(inner: A, rates: &ApiRates, phase: impl Fn(Op) -> f64) -> Self {
        Paced {
            inner,
            limiters: Op::ALL.map(|op| RateLimiter::per_second_from(rates.get(op), phase(op))),
            share: Share::new(1),
            retries: 0,
        }
    }

    /// Paces at the account's `rates` divided by `share`'s instances at the
    /// time of each call: an instance working alone takes the whole rate.
    pub fn sharing(self, share: Share) -> Self {
        Paced { share, ..self }
    }

    /// Retries a transient failure up to `retries` times, each retry in its
    /// own slot. For a client whose own retries are off (the function's):
    /// a client retrying a throttled call by itself sends it unpaced, on top
    /// of the paced calls, into a quota that is already spent, and is
    /// throttled again.
    pub fn retrying(self, retries: u32) -> Self {
        Paced { retries, ..self }
    }

    /// `call` in `op`'s slots: once, and again for each transient failure
    /// while retries remain.
    async fn paced<T, F, Fut>(&self, op: Op, call: F) -> Result<T, AwsError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, AwsError>>,
    {
        let mut retried = 0;
        loop {
            self.limiters[op.index()]
                .acquire_one_of(self.share.sharers())
                .await;
            match call().await {
                Err(e) if e.is_transient() && retried < self.retries => {
                    // A short spell of errors is waited out, not spent in
                    // back-to-back slots: 100 ms doubling to 5 s, then the
                    // next slot (the invocation's deadline bounds it all).
                    let backoff = RETRY_BACKOFF.saturating_mul(1 << retried.min(6));
                    retried += 1;
                    tracing::debug!(operation = op.name(), error = %e, "retrying in a later slot");
                    tokio::time::sleep(backoff.min(RETRY_BACKOFF_MAX)).await;
                }
                answer => return answer,
            }
        }
    }
}

impl<A: IotApi + Send> IotApi for Paced<A> {
    async fn describe_certificate(&self, id: &str) -> Result<Described, AwsError> {
        self.paced(Op::DescribeCertificate, || {
            self.inner.describe_certificate(id)
        })
        .await
    }
    async fn create_thing(
        &self,
        name: &str,
        thing_type: Option<&str>,
        attributes: &HashMap<String, String>,
    ) -> Result<(), AwsError> {
        self.paced(Op::CreateThing, || {
            self.inner.create_thing(name, thing_type, attributes)
        })
        .await
    }
    async fn attach_policy(&self, policy: &str, target_arn: &str) -> Result<(), AwsError> {
        self.paced(Op::AttachPolicy, || {
            self.inner.attach_policy(policy, target_arn)
        })
        .await
    }
    async fn attach_thing_principal(
        &self,
        thing: &str,
        principal: &str,
        exclusive: bool,
    ) -> Result<(), AwsError> {
        self.paced(Op::AttachThingPrincipal, || {
            self.inner
                .attach_thing_principal(thing, principal, exclusive)
        })
        .await
    }
    async fn add_thing_to_thing_group(&self, thing: &str, group: &str) -> Result<(), AwsError> {
        self.paced(Op::AddThingToThingGroup, || {
            self.inner.add_thing_to_thing_group(thing, group)
        })
        .await
    }
    async fn update_certificate(
        &self,
        id: &str,
        status: CertificateStatus,
    ) -> Result<(), AwsError> {
        self.paced(Op::UpdateCertificate, || {
            self.inner.update_certificate(id, status.clone())
        })
        .await
    }
    async fn list_pending_certificates(&self, ca_id: &str) -> Result<Vec<String>, AwsError> {
        self.paced(Op::ListCertificatesByCA, || {
            self.inner.list_pending_certificates(ca_id)
        })
        .await
    }
    async fn list_thing_principals(&self, thing: &str) -> Result<Vec<String>, AwsError> {
        self.paced(Op::ListThingPrincipals, || {
            self.inner.list_thing_principals(thing)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records when each operation was called (virtual time).
    #[derive(Default)]
    struct Clock(
        std::sync::Mutex<Vec<(&'static str, std::time::Duration)>>,
        Option<tokio::time::Instant>,
    );

    impl Clock {
        fn note(&self, op: &'static str) {
            let start = self.1.expect("started");
            self.0.lock().unwrap().push((op, start.elapsed()));
        }
    }

    impl IotApi for Clock {
        async fn describe_certificate(&self, _: &str) -> Result<Described, AwsError> {
            self.note("DescribeCertificate");
            Err(AwsError::NotFound("fake".into()))
        }
        async fn create_thing(
            &self,
            _: &str,
            _: Option<&str>,
            _: &HashMap<String, String>,
        ) -> Result<(), AwsError> {
            self.note("CreateThing");
            Ok(())
        }
        async fn attach_policy(&self, _: &str, _: &str) -> Result<(), AwsError> {
            self.note("AttachPolicy");
            Ok(())
        }
        async fn attach_thing_principal(&self, _: &str, _: &str, _: bool) -> Result<(), AwsError> {
            self.note("AttachThingPrincipal");
            Ok(())
        }
        async fn add_thing_to_thing_group(&self, _: &str, _: &str) -> Result<(), AwsError> {
            self.note("AddThingToThingGroup");
            Ok(())
        }
        async fn update_certificate(&self, _: &str, _: CertificateStatus) -> Result<(), AwsError> {
            self.note("UpdateCertificate");
            Ok(())
        }
        async fn list_pending_certificates(&self, _: &str) -> Result<Vec<String>, AwsError> {
            self.note("ListCertificatesByCA");
            Ok(vec![])
        }
        async fn list_thing_principals(&self, _: &str) -> Result<Vec<String>, AwsError> {
            self.note("ListThingPrincipals");
            Ok(vec![])
        }
    }

    #[tokio::test(start_paused = true)]
    async fn each_operation_keeps_to_its_share_independently() {
        // 10/s and 15/s shared by 5 instances: 2/s and 3/s for this one.
        let clock = Clock(Default::default(), Some(tokio::time::Instant::now()));
        let rates = ApiRates::parse("CreateThing=15").unwrap();
        let paced = Paced::with_phase(clock, &rates.share(5), |_| 0.0);
        let calls = (0..5).map(|_| async {
            let _ = paced.describe_certificate("c").await;
            let _ = paced.create_thing("t", None, &HashMap::new()).await;
        });
        futures::future::join_all(calls).await;
        let log = paced.inner.0.lock().unwrap().clone();
        let at = |op: &str| -> Vec<u128> {
            log.iter()
                .filter(|(o, _)| *o == op)
                .map(|(_, t)| t.as_millis())
                .collect()
        };
        // DescribeCertificate every 500 ms; CreateThing follows each describe
        // but never closer than 333 ms to the previous one.
        assert_eq!(at("DescribeCertificate"), [0, 500, 1000, 1500, 2000]);
        let things = at("CreateThing");
        assert_eq!(things.len(), 5);
        assert!(things.windows(2).all(|w| w[1] - w[0] >= 333), "{things:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn instances_starting_together_spread_their_first_calls() {
        // 4 instances at a quarter of 10/s each (2.5/s, 400 ms apart),
        // phases 0, 1/4, 2/4, 3/4: their first DescribeCertificate calls
        // 100 ms apart, as one 10/s caller would make them.
        let start = tokio::time::Instant::now();
        let firsts = futures::future::join_all((0..4).map(|i| async move {
            let clock = Clock(Default::default(), Some(start));
            let paced =
                Paced::with_phase(clock, &ApiRates::default().share(4), |_| f64::from(i) / 4.0);
            let _ = paced.describe_certificate("c").await;
            let at = paced.inner.0.lock().unwrap()[0].1.as_millis();
            at
        }))
        .await;
        assert_eq!(firsts, [0, 100, 200, 300]);
    }

    /// DescribeCertificate throttled the first `throttled` times.
    struct Throttled(std::sync::atomic::AtomicU32, Clock);

    impl IotApi for Throttled {
        async fn describe_certificate(&self, _: &str) -> Result<Described, AwsError> {
            self.1.note("DescribeCertificate");
            let left = self.0.load(std::sync::atomic::Ordering::SeqCst);
            if left > 0 {
                self.0.store(left - 1, std::sync::atomic::Ordering::SeqCst);
                return Err(AwsError::Throttled {
                    code: "ThrottlingException".into(),
                    message: "Rate exceeded".into(),
                });
            }
            Err(AwsError::NotFound("fake".into()))
        }
        async fn create_thing(
            &self,
            n: &str,
            t: Option<&str>,
            a: &HashMap<String, String>,
        ) -> Result<(), AwsError> {
            self.1.create_thing(n, t, a).await
        }
        async fn attach_policy(&self, p: &str, t: &str) -> Result<(), AwsError> {
            self.1.attach_policy(p, t).await
        }
        async fn attach_thing_principal(&self, t: &str, p: &str, e: bool) -> Result<(), AwsError> {
            self.1.attach_thing_principal(t, p, e).await
        }
        async fn add_thing_to_thing_group(&self, t: &str, g: &str) -> Result<(), AwsError> {
            self.1.add_thing_to_thing_group(t, g).await
        }
        async fn update_certificate(&self, i: &str, s: CertificateStatus) -> Result<(), AwsError> {
            self.1.update_certificate(i, s).await
        }
        async fn list_pending_certificates(&self, c: &str) -> Result<Vec<String>, AwsError> {
            self.1.list_pending_certificates(c).await
        }
        async fn list_thing_principals(&self, t: &str) -> Result<Vec<String>, AwsError> {
            self.1.list_thing_principals(t).await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_call_is_retried_in_a_slot_of_its_own() {
        // 2/s: slots 500 ms apart. Throttled twice: three calls, 0, 500 and
        // 1000 ms, never closer than a slot (the quota is not hit harder).
        let start = Some(tokio::time::Instant::now());
        let api = Throttled(2.into(), Clock(Default::default(), start));
        let rates = ApiRates::parse("DescribeCertificate=2").unwrap();
        let paced = Paced::with_phase(api, &rates, |_| 0.0).retrying(3);
        let answer = paced.describe_certificate("c").await;
        assert!(
            matches!(answer, Err(AwsError::NotFound(_))),
            "the fake's answer: {answer:?}"
        );
        let at: Vec<u128> = paced
            .inner
            .1
             .0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, t)| t.as_millis())
            .collect();
        assert_eq!(at, [0, 500, 1000]);
        // Without retries (the CLI: its client retries) the first answer stands.
        let api = Throttled(2.into(), Clock(Default::default(), start));
        let paced = Paced::with_phase(api, &rates, |_| 0.0);
        assert!(matches!(
            paced.describe_certificate("c").await,
            Err(AwsError::Throttled { .. })
        ));
        // Retries run out: the throttling is the answer.
        let api = Throttled(5.into(), Clock(Default::default(), start));
        let paced = Paced::with_phase(api, &rates, |_| 0.0).retrying(2);
        assert!(matches!(
            paced.describe_certificate("c").await,
            Err(AwsError::Throttled { .. })
        ));
        assert_eq!(paced.inner.1 .0.lock().unwrap().len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn an_instance_working_alone_takes_the_whole_rate() {
        // The account's 10/s, at most 20 instances: 2 s apart until the
        // instances are counted; 100 ms apart once this one works alone; 1 s
        // apart when ten work.
        let start = Some(tokio::time::Instant::now());
        let share = Share::new(20);
        let paced = Paced::with_phase(
            Clock(Default::default(), start),
            &ApiRates::default(),
            |_| 0.0,
        )
        .sharing(share.clone());
        let describe = |n| {
            let paced = &paced;
            async move {
                for _ in 0..n {
                    let _ = paced.describe_certificate("c").await;
                }
            }
        };
        describe(2).await;
        share.set_working(1);
        describe(3).await;
        share.set_working(10);
        describe(2).await;
        // Never more than the most, never fewer than one.
        share.set_working(50);
        assert_eq!(share.sharers(), 20);
        share.set_working(0);
        assert_eq!(share.sharers(), 1);
        let at: Vec<u128> = paced
            .inner
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, t)| t.as_millis())
            .collect();
        assert_eq!(at, [0, 2000, 4000, 4100, 4200, 4300, 5300]);
    }
}
