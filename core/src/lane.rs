//! Two lanes into the one function: the topic rule sends every registered
//! event to a bulk queue (large batches, a batching window) and to a fast
//! lane (batches of 10, no window), so a lone device is not kept waiting by
//! the window. In a burst the fast lane's small batches would only take a
//! share of the account's rate (the heartbeats count its instances as
//! working) while carrying one or two new certificates each: so the fast
//! lane defers to the bulk lane while that lane works. Every event is in
//! both queues, so a deferred record loses nothing: the bulk lane's copy is
//! still queued and does the work.

use crate::outcome::{Kind, Outcome};

/// Which event source mapping a batch came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Large batches behind a batching window (and any queue not named the
    /// fast lane: correctness never rests on the fast lane).
    Bulk,
    /// The queue named by `JITR_FAST_LANE_QUEUE_ARN`.
    Fast,
}

impl Lane {
    /// The lane of a batch whose records name `sources` (each record's
    /// `eventSourceARN`): the fast lane only if every record comes from
    /// `fast_lane` and there is one.
    pub fn of<'a>(
        sources: impl IntoIterator<Item = Option<&'a str>>,
        fast_lane: Option<&str>,
    ) -> Lane {
        let Some(fast) = fast_lane else {
            return Lane::Bulk;
        };
        let mut sources = sources.into_iter().peekable();
        if sources.peek().is_some() && sources.all(|s| s == Some(fast)) {
            Lane::Fast
        } else {
            Lane::Bulk
        }
    }
}

/// What a batch does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Provision its certificates.
    Work,
    /// Acknowledge its records without an IoT call.
    Defer,
}

/// A batch of `lane` defers only if it is the fast lane's and the bulk
/// lane is known to be working (`bulk_working`: a bulk-lane beat within its
/// lease; None when the beats could not be read: then the fast lane works,
/// latency first).
pub fn decide(lane: Lane, bulk_working: Option<bool>) -> Decision {
    match (lane, bulk_working) {
        (Lane::Fast, Some(true)) => Decision::Defer,
        _ => Decision::Work,
    }
}

/// The outcome of a deferred certificate.
pub fn deferred(certificate_id: &str) -> Outcome {
    Outcome::without_calls(
        certificate_id,
        Kind::Deferred,
        "fast lane: the bulk lane is working and its copy of this event provisions the certificate",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: &str = "arn:aws:sqs:eu-west-1:123456789012:fast";
    const BULK: &str = "arn:aws:sqs:eu-west-1:123456789012:bulk";

    #[test]
    fn a_batch_is_the_fast_lane_s_only_if_every_record_comes_from_it() {
        for (sources, fast, want) in [
            (vec![Some(FAST)], Some(FAST), Lane::Fast),
            (vec![Some(FAST), Some(FAST)], Some(FAST), Lane::Fast),
            (vec![Some(BULK)], Some(FAST), Lane::Bulk),
            (vec![Some(FAST), Some(BULK)], Some(FAST), Lane::Bulk),
            (vec![Some(FAST), None], Some(FAST), Lane::Bulk),
            (vec![], Some(FAST), Lane::Bulk),
            (vec![Some(FAST)], None, Lane::Bulk),
        ] {
            assert_eq!(
                Lane::of(sources.clone(), fast),
                want,
                "{sources:?} {fast:?}"
            );
        }
    }

    #[test]
    fn only_the_fast_lane_defers_and_only_to_a_working_bulk_lane() {
        for (lane, bulk_working, want) in [
            (Lane::Fast, Some(true), Decision::Defer),
            (Lane::Fast, Some(false), Decision::Work),
            (Lane::Fast, None, Decision::Work),
            (Lane::Bulk, Some(true), Decision::Work),
            (Lane::Bulk, Some(false), Decision::Work),
            (Lane::Bulk, None, Decision::Work),
        ] {
            assert_eq!(
                decide(lane, bulk_working),
                want,
                "{lane:?} {bulk_working:?}"
            );
        }
    }

    #[test]
    fn a_deferred_record_is_acknowledged() {
        let o = deferred("c");
        assert_eq!(o.outcome, Kind::Deferred);
        assert!(!o.failed(), "acknowledged, never retried");
        assert_eq!(o.certificate_id, "c");
    }
}
