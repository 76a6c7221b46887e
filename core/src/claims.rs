//! Claims on certificates, shared by every instance of the function.
//!
//! A device retries while its certificate is pending, and AWS IoT publishes
//! the registered event again on every attempt: a fleet powering on sends
//! several events per device, spread over the function's instances. Each
//! costs a DescribeCertificate (10/s per account, the scarcest quota) unless
//! the instance knows the answer. An instance's own memory
//! ([`crate::recent`]) cannot know what another instance did; a claim can:
//! the first event to claim a certificate provisions it, and every other
//! event for it is acknowledged without an IoT call, while the claim is
//! held ([`Claim::Elsewhere`]) and for ten minutes after it was done
//! ([`Claim::Done`]).
//!
//! Acknowledging a duplicate loses nothing: the claimant's own record stays
//! in the queue until its work is done. A claimant that fails gives the
//! claim up (or its claim expires at its deadline), so the next event, or
//! the claimant's record when it comes back, claims it again. The claims
//! save quota; they are never needed for correctness: when the table
//! cannot be reached the function provisions without a claim.

use std::future::Future;

use crate::admission::AllowList;
use crate::clock;
use crate::config::Config;
use crate::deadline::Deadline;
use crate::expiring::Expiring;
use crate::iot::IotApi;
use crate::lane::Lane;
use crate::outcome::{Kind, Outcome};
use crate::provision::{self, Gates};
use crate::verifier::Verifier;

/// How long a certificate found done stays done (as [`crate::recent`]
/// remembers it): a certificate deleted and registered again within this
/// time waits for it, or for `jitr provision`.
pub const REMEMBER_SECONDS: i64 = 600;

/// The longest a claim is held without a deadline (the CLI has none).
const CLAIM_WITHOUT_DEADLINE_SECONDS: i64 = 300;

/// What the claims say about a certificate an event names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This instance holds the claim: provision it.
    Mine,
    /// Another event for it was handled a moment ago: nothing to do.
    Done,
    /// Another instance is provisioning it now: nothing to do here.
    Elsewhere,
}

/// Why the claims could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("claims table {table}: {reason}")]
pub struct ClaimsError {
    pub table: String,
    pub reason: String,
}

/// The shared claims (a DynamoDB table in the deployed function).
pub trait Claims: Sync {
    /// Claims `certificate_id` for this instance until `until` (Unix
    /// seconds), unless another event for it was done or is claimed and
    /// neither has expired at `now`.
    fn claim(
        &self,
        certificate_id: &str,
        now: i64,
        until: i64,
    ) -> impl Future<Output = Result<Claim, ClaimsError>> + Send;
    /// The certificate needs nothing more: done until `until`.
    fn finish(
        &self,
        certificate_id: &str,
        until: i64,
    ) -> impl Future<Output = Result<(), ClaimsError>> + Send;
    /// Gives this instance's claim up: the work failed or was cut short.
    fn release(&self, certificate_id: &str)
        -> impl Future<Output = Result<(), ClaimsError>> + Send;
    /// This instance is working (`now_ms`, Unix milliseconds) for `lane`:
    /// counted among the instances sharing the account's rates for
    /// [`BEAT_LEASE_MS`] (see [`crate::pacing::Share`]). Nothing to count by
    /// default.
    fn beat(
        &self,
        now_ms: i64,
        lane: Lane,
    ) -> impl Future<Output = Result<(), ClaimsError>> + Send {
        let _ = (now_ms, lane);
        async { Ok(()) }
    }
    /// Whether a bulk-lane instance beat within its lease at `now_ms`
    /// (read without beating: a fast-lane batch that defers is not counted
    /// as working). Never, by default.
    fn bulk_working(&self, now_ms: i64) -> impl Future<Output = Result<bool, ClaimsError>> + Send {
        let _ = now_ms;
        async { Ok(false) }
    }
}

/// How often a working instance beats (the handler, while a batch runs).
pub const BEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// How long a beat counts: an instance that stops beating stops counting
/// after this (its share goes to the others then, not before: safe).
pub const BEAT_LEASE_MS: i64 = 3000;
/// A beat this old is removed from the table by the next instance beating.
pub const BEAT_FORGET_MS: i64 = 60_000;

/// One heartbeat: the instance `owner` worked for `lane`, counted until
/// `until` (Unix ms); `name` is where it is stored (removed by that name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Beat<'a> {
    pub name: &'a str,
    pub owner: &'a str,
    pub lane: Lane,
    pub until: i64,
}

/// What the heartbeats say at one moment.
#[derive(Debug, PartialEq, Eq)]
pub struct Working<'a> {
    /// The instances working, of either lane, each once, `me` always included.
    pub instances: u32,
    /// Whether any instance (`me` too) beat for the bulk lane within its lease.
    pub bulk: bool,
    /// Beats old enough to remove (never `me`'s), by name.
    pub stale: Vec<&'a str>,
}

/// The instances working at `now_ms` among `beats`. An instance serves one
/// invocation at a time, but its beat for the lane it served before counts
/// until its lease ends: it is counted once.
pub fn working<'a>(
    beats: impl IntoIterator<Item = Beat<'a>>,
    me: &str,
    now_ms: i64,
) -> Working<'a> {
    let mut others: Vec<&str> = Vec::new();
    let mut bulk = false;
    let mut stale = Vec::new();
    for beat in beats {
        if beat.until >= now_ms {
            bulk |= beat.lane == Lane::Bulk;
            if beat.owner != me && !others.contains(&beat.owner) {
                others.push(beat.owner);
            }
        } else if beat.owner != me && beat.until < now_ms - BEAT_FORGET_MS {
            stale.push(beat.name);
        }
    }
    Working {
        instances: 1 + others.len() as u32,
        bulk,
        stale,
    }
}

/// No shared claims (the CLI, tests): every event is provisioned.
pub struct NoClaims;

impl Claims for NoClaims {
    async fn claim(&self, _: &str, _: i64, _: i64) -> Result<Claim, ClaimsError> {
        Ok(Claim::Mine)
    }
    async fn finish(&self, _: &str, _: i64) -> Result<(), ClaimsError> {
        Ok(())
    }
    async fn release(&self, _: &str) -> Result<(), ClaimsError> {
        Ok(())
    }
}

/// Claims when configured, none otherwise (the function without a table).
impl<C: Claims> Claims for Option<C> {
    async fn claim(&self, id: &str, now: i64, until: i64) -> Result<Claim, ClaimsError> {
        match self {
            Some(c) => c.claim(id, now, until).await,
            None => Ok(Claim::Mine),
        }
    }
    async fn finish(&self, id: &str, until: i64) -> Result<(), ClaimsError> {
        match self {
            Some(c) => c.finish(id, until).await,
            None => Ok(()),
        }
    }
    async fn release(&self, id: &str) -> Result<(), ClaimsError> {
        match self {
            Some(c) => c.release(id).await,
            None => Ok(()),
        }
    }
    async fn beat(&self, now_ms: i64, lane: Lane) -> Result<(), ClaimsError> {
        match self {
            Some(c) => c.beat(now_ms, lane).await,
            None => Ok(()),
        }
    }
    async fn bulk_working(&self, now_ms: i64) -> Result<bool, ClaimsError> {
        match self {
            Some(c) => c.bulk_working(now_ms).await,
            None => Ok(false),
        }
    }
}

/// How long this instance trusts a `Done` answer it got from the table.
const TRUST_DONE_SECONDS: i64 = 60;
/// At most this many certificates remembered done (what has expired
/// forgotten first, then the oldest).
const REMEMBERED_AT_MOST: usize = 20_000;

/// Claims that remember, in this instance, the certificates found done: a
/// certificate's duplicates often reach the same instance again, and each
/// would otherwise cost a request to the table.
pub struct RememberDone<C> {
    inner: C,
    /// Certificate ids done, each until when (Unix seconds).
    done: std::sync::Mutex<Expiring<()>>,
}

impl<C: Claims> RememberDone<C> {
    pub fn new(inner: C) -> Self {
        RememberDone {
            inner,
            done: std::sync::Mutex::new(Expiring::new(REMEMBERED_AT_MOST)),
        }
    }

    fn remember(&self, id: &str, until: i64, now: i64) {
        self.done.lock().unwrap().insert(id, (), until, now);
    }
}

impl<C: Claims> Claims for RememberDone<C> {
    async fn claim(&self, id: &str, now: i64, until: i64) -> Result<Claim, ClaimsError> {
        let known = self.done.lock().unwrap().get(id, now).is_some();
        if known {
            return Ok(Claim::Done);
        }
        let claim = self.inner.claim(id, now, until).await?;
        if claim == Claim::Done {
            self.remember(id, now + TRUST_DONE_SECONDS, now);
        }
        Ok(claim)
    }
    async fn finish(&self, id: &str, until: i64) -> Result<(), ClaimsError> {
        self.inner.finish(id, until).await?;
        self.remember(id, until, clock::unix_seconds());
        Ok(())
    }
    async fn release(&self, id: &str) -> Result<(), ClaimsError> {
        self.done.lock().unwrap().remove(id);
        self.inner.release(id).await
    }
    async fn beat(&self, now_ms: i64, lane: Lane) -> Result<(), ClaimsError> {
        self.inner.beat(now_ms, lane).await
    }
    async fn bulk_working(&self, now_ms: i64) -> Result<bool, ClaimsError> {
        self.inner.bulk_working(now_ms).await
    }
}

/// Until when a claim made at `now` holds: the invocation's cutoff, a
/// margin before its deadline (rounded down: a claim never outlives the
/// invocation, so the claimant's own record, back after the queue's
/// visibility timeout, never finds it held).
fn claim_until(now: i64, deadline: &Deadline) -> i64 {
    match deadline.remaining() {
        Some(left) => now + left.as_secs() as i64,
        None => now + CLAIM_WITHOUT_DEADLINE_SECONDS,
    }
}

/// What a certificate's event comes to when the claims say `claim`: its
/// outcome without an IoT call, or None (provision it).
fn settled_without_work(certificate_id: &str, claim: Claim) -> Option<Outcome> {
    let (kind, reason) = match claim {
        Claim::Mine => return None,
        Claim::Done => (
            Kind::Duplicate,
            "another event for this certificate was handled in the last ten minutes",
        ),
        Claim::Elsewhere => (
            Kind::ClaimedElsewhere,
            "another instance is provisioning this certificate; its event stays queued until it is done",
        ),
    };
    Some(Outcome::without_calls(certificate_id, kind, reason))
}

/// Provisions `certificate_id` unless the claims say another event for it
/// was, or is being, handled; `now` is the invocation's start (Unix
/// seconds), as the certificate checks take it. A claims error is logged
/// and the certificate provisioned anyway. For SQS records only: a
/// duplicate is acknowledged because the claimant's record stays queued.
pub async fn provision_claimed<A: IotApi, C: Claims, L: AllowList, V: Verifier>(
    api: &A,
    claims: &C,
    gates: Gates<'_, L, V>,
    config: &Config,
    certificate_id: &str,
    now: i64,
    deadline: Deadline,
) -> Outcome {
    let started = std::time::Instant::now();
    // Claims are timed by the clock when they are made: a record may start
    // minutes into a long batch.
    let claimed_at = clock::unix_seconds();
    let claim = claims.claim(
        certificate_id,
        claimed_at,
        claim_until(claimed_at, &deadline),
    );
    match deadline.run(claim).await {
        Some(Ok(claim)) => {
            if let Some(outcome) = settled_without_work(certificate_id, claim) {
                return outcome;
            }
        }
        Some(Err(e)) => {
            tracing::warn!(certificateId = %certificate_id, error = %e, "provisioning without a claim")
        }
        None => return Outcome::unfinished(certificate_id, started.elapsed()),
    }
    let outcome =
        provision::provision_within(api, gates, config, certificate_id, now, deadline).await;
    let settle = async {
        if outcome.failed() {
            claims.release(certificate_id).await
        } else {
            let done_until = clock::unix_seconds() + REMEMBER_SECONDS;
            claims.finish(certificate_id, done_until).await
        }
    };
    // Only before the cutoff: a claim left behind lapses at it anyway.
    match deadline.run(settle).await {
        Some(Ok(())) => {}
        Some(Err(e)) => {
            tracing::warn!(certificateId = %certificate_id, error = %e, "claim not settled")
        }
        None => {
            tracing::warn!(certificateId = %certificate_id, "claim left to lapse at the deadline")
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_claim_of_ones_own_is_provisioned() {
        for (claim, want) in [
            (Claim::Mine, None),
            (Claim::Done, Some(Kind::Duplicate)),
            (Claim::Elsewhere, Some(Kind::ClaimedElsewhere)),
        ] {
            let got = settled_without_work("c", claim);
            assert_eq!(got.as_ref().map(|o| o.outcome), want, "{claim:?}");
            if let Some(o) = got {
                assert!(!o.failed(), "a duplicate is acknowledged, never retried");
                assert_eq!(o.certificate_id, "c");
            }
        }
    }

    /// Counts claims; answers `Done` for ids starting with "done".
    #[derive(Default)]
    struct Counting(std::sync::atomic::AtomicUsize);

    impl Claims for Counting {
        async fn claim(&self, id: &str, _: i64, _: i64) -> Result<Claim, ClaimsError> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(if id.starts_with("done") {
                Claim::Done
            } else {
                Claim::Mine
            })
        }
        async fn finish(&self, _: &str, _: i64) -> Result<(), ClaimsError> {
            Ok(())
        }
        async fn release(&self, _: &str) -> Result<(), ClaimsError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn an_instance_asks_the_table_once_about_a_certificate_it_knows_done() {
        let claims = RememberDone::new(Counting::default());
        let asked = || claims.inner.0.load(std::sync::atomic::Ordering::SeqCst);
        // Done elsewhere: asked once, then trusted for a minute.
        for _ in 0..3 {
            assert_eq!(
                claims.claim("done-1", 1000, 1060).await.unwrap(),
                Claim::Done
            );
        }
        assert_eq!(asked(), 1);
        assert_eq!(
            claims.claim("done-1", 1061, 1120).await.unwrap(),
            Claim::Done
        );
        assert_eq!(asked(), 2, "asked again after a minute");
        // Finished here: done until the given time, without asking.
        assert_eq!(claims.claim("a", 1000, 1060).await.unwrap(), Claim::Mine);
        claims.finish("a", 1600).await.unwrap();
        assert_eq!(claims.claim("a", 1599, 1660).await.unwrap(), Claim::Done);
        assert_eq!(asked(), 3);
        assert_eq!(claims.claim("a", 1601, 1660).await.unwrap(), Claim::Mine);
        // Given up: never answered from memory.
        claims.finish("b", 1600).await.unwrap();
        claims.release("b").await.unwrap();
        assert_eq!(claims.claim("b", 1000, 1060).await.unwrap(), Claim::Mine);
    }

    /// Full (20,000 remembered), the memory forgets what has expired
    /// first, then the oldest: never everything at once.
    #[tokio::test]
    async fn a_full_memory_forgets_the_expired_then_the_oldest() {
        use std::sync::atomic::Ordering::SeqCst;
        let claims = RememberDone::new(Counting::default());
        let asked = || claims.inner.0.load(SeqCst);
        let now = clock::unix_seconds();
        // Done here for ten minutes; then 19,999 certificates the table
        // said were done a while ago (trusted a minute: expired now).
        claims.finish("keep", now + 600).await.unwrap();
        for i in 0..19_999 {
            let id = format!("done-{i}");
            assert_eq!(
                claims.claim(&id, now - 1000, now).await.unwrap(),
                Claim::Done
            );
        }
        assert_eq!(asked(), 19_999);
        // One more: the expired ones go, "keep" stays.
        claims.finish("new", now + 600).await.unwrap();
        for id in ["keep", "new"] {
            assert_eq!(
                claims.claim(id, now, now + 60).await.unwrap(),
                Claim::Done,
                "{id}"
            );
        }
        assert_eq!(asked(), 19_999, "answered from memory");
        // Full of valid entries (keep, new, f-0 .. f-19997): one more
        // forgets the oldest, "keep", and only it.
        for i in 0..19_998 {
            claims.finish(&format!("f-{i}"), now + 600).await.unwrap();
        }
        claims.finish("last", now + 600).await.unwrap();
        for id in ["new", "f-0", "f-19997", "last"] {
            assert_eq!(
                claims.claim(id, now, now + 60).await.unwrap(),
                Claim::Done,
                "{id}"
            );
        }
        assert_eq!(asked(), 19_999);
        assert_eq!(
            claims.claim("keep", now, now + 60).await.unwrap(),
            Claim::Mine
        );
        assert_eq!(asked(), 20_000, "the oldest was forgotten: asked");
    }

    #[test]
    fn instances_working_are_those_whose_beats_count_now() {
        let now = 1_000_000;
        let b = |name: &'static str, lane, until| Beat {
            name,
            owner: name.trim_start_matches("fast_"),
            lane,
            until,
        };
        use Lane::{Bulk, Fast};
        for (beats, want, want_bulk, want_stale) in [
            (vec![], 1, false, vec![]),
            (vec![b("me", Bulk, now - 10_000)], 1, false, vec![]),
            (
                vec![
                    b("me", Bulk, now),
                    b("a", Bulk, now),
                    b("b", Bulk, now + 2999),
                ],
                3,
                true,
                vec![],
            ),
            (
                vec![b("a", Bulk, now - 1), b("b", Bulk, now - 60_000)],
                1,
                false,
                vec![],
            ),
            (
                vec![
                    b("a", Bulk, now - 60_001),
                    b("b", Bulk, now + 1),
                    b("me", Bulk, now - 90_000),
                ],
                2,
                true,
                vec!["a"],
            ),
            // Fast-lane instances share the rate, but are not the bulk lane.
            (
                vec![b("fast_a", Fast, now), b("fast_me", Fast, now)],
                2,
                false,
                vec![],
            ),
            // My own bulk beat, still within its lease, says the bulk lane works.
            (
                vec![b("me", Bulk, now + 500), b("fast_me", Fast, now)],
                1,
                true,
                vec![],
            ),
            // One instance that moved from one lane to the other counts once.
            (
                vec![b("a", Bulk, now + 1), b("fast_a", Fast, now + 2000)],
                2,
                true,
                vec![],
            ),
            (
                vec![b("fast_a", Fast, now - 70_000)],
                1,
                false,
                vec!["fast_a"],
            ),
        ] {
            let got = working(beats.clone(), "me", now);
            let want = Working {
                instances: want,
                bulk: want_bulk,
                stale: want_stale,
            };
            assert_eq!(got, want, "{beats:?}");
        }
    }

    #[test]
    fn a_claim_lasts_until_the_deadline() {
        assert_eq!(claim_until(1000, &Deadline::none()), 1300);
        // 60 s less the 2 s margin, in whole seconds rounded down: never
        // past the cutoff. The clock runs while this runs, so the claim is
        // bracketed by the time left just before and just after (an exact
        // 1057 held only if under a second passed in between).
        let d = Deadline::after(std::time::Duration::from_secs(60));
        let before = d.remaining().unwrap();
        let until = claim_until(1000, &d);
        let after = d.remaining().unwrap();
        assert!(before <= std::time::Duration::from_secs(58), "{before:?}");
        assert!(
            until <= 1000 + before.as_secs() as i64,
            "{until}: past the cutoff ({before:?} left)"
        );
        assert!(
            until >= 1000 + after.as_secs() as i64,
            "{until}: {after:?} left after"
        );
    }
}
