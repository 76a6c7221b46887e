//! The deployed function's event queue (its depth, its visibility timeout
//! against the function's timeout, its oldest event's age) and its reserved
//! concurrency. Pure: the command passes in what it read.

use super::metrics::Figure;
use super::{duration, Check};
use crate::cloud::function::QueueDepth;

/// The event queue as SQS reports it, and the function's timeout.
#[derive(Debug, Clone, Default)]
pub struct QueueTiming {
    pub url: String,
    /// Waiting (ApproximateNumberOfMessages).
    pub visible: u64,
    /// Received, not yet deleted (ApproximateNumberOfMessagesNotVisible).
    pub in_flight: u64,
    pub visibility_timeout: i64,
    /// The age (s) of the oldest event over the window (CloudWatch's
    /// ApproximateAgeOfOldestMessage, maximum).
    pub oldest_age: Figure<i64>,
    pub function_timeout: i64,
}

impl QueueTiming {
    /// The queue as SQS reports it, with its oldest event's age from CloudWatch.
    pub fn new(depth: QueueDepth, oldest_age: Figure<i64>) -> Self {
        QueueTiming {
            url: depth.url,
            visible: depth.visible,
            in_flight: depth.in_flight,
            visibility_timeout: depth.visibility_timeout,
            oldest_age,
            function_timeout: depth.function_timeout,
        }
    }
}

/// An event waiting longer than this is WARNed of (the function takes
/// events within seconds when it keeps up).
pub const SLOW_AGE: i64 = 300;

/// The event queue: events must not reappear while the function works on
/// them (visibility timeout at least the function's timeout: AWS advises
/// six times it), nor wait long. The oldest event's age: WARN past
/// [`SLOW_AGE`] or past the visibility timeout (events were taken and
/// returned, or not taken); FAIL past six times the function's timeout
/// while the function fails its events (they are retried in vain and end
/// in the dead-letter queue).
pub fn queue_check(q: &QueueTiming, set_visibility: &str, function_fails: bool) -> Check {
    const NAME: &str = "event queue";
    let depth = format!(
        "{}: {} waiting, {} in flight, visibility timeout {} s",
        q.url, q.visible, q.in_flight, q.visibility_timeout
    );
    if q.visibility_timeout < q.function_timeout {
        return Check::fail(
            NAME,
            format!(
                "{depth}, shorter than the function's timeout {} s: events reappear while the function still works on them (AWS advises six times the timeout)",
                q.function_timeout
            ),
            set_visibility,
        );
    }
    let age = match &q.oldest_age {
        Figure::Value(age) => *age,
        Figure::NoData => {
            return Check::pass(
                NAME,
                format!("{depth}; oldest event's age: no CloudWatch datapoints"),
            )
        }
        Figure::Unreadable(e) => {
            return Check::pass(
                NAME,
                format!("{depth}; oldest event's age could not be read from CloudWatch: {e}"),
            )
        }
    };
    let waited = format!("{depth}; the oldest event has waited {}", duration(age));
    let look = "see the function, function concurrency and event source mapping checks";
    if function_fails && age > q.function_timeout * 6 {
        Check::fail(
            NAME,
            format!(
                "{waited}, longer than six times the function's timeout ({} s) while the function fails its events: they are retried in vain and end in the dead-letter queue",
                q.function_timeout
            ),
            "see the function check (correct its failure first)",
        )
    } else if age > q.visibility_timeout {
        Check::warn(
            NAME,
            format!("{waited}, longer than the visibility timeout: events were taken and returned, or not taken"),
            look,
        )
    } else if age > SLOW_AGE {
        Check::warn(
            NAME,
            format!(
                "{waited}, longer than {}: the function does not keep up",
                duration(SLOW_AGE)
            ),
            look,
        )
    } else {
        Check::pass(NAME, format!("{depth}; oldest event {}", duration(age)))
    }
}

/// The function's reserved concurrency: 0 throttles every invocation;
/// below 5 an SQS mapping is throttled (AWS advises at least five).
pub fn concurrency_check(
    function: &str,
    reserved: Option<i32>,
    delete: &str,
    raise: &str,
) -> Check {
    const NAME: &str = "function concurrency";
    match reserved {
        None => Check::pass(NAME, format!("{function}: unreserved (the account's pool)")),
        Some(0) => Check::fail(
            NAME,
            format!("{function}: reserved concurrency 0: every invocation is throttled, events wait in the queue"),
            delete,
        ),
        Some(n) if n < 5 => Check::warn(
            NAME,
            format!("{function}: reserved concurrency {n}: the queue's poller is throttled (AWS advises at least 5)"),
            raise,
        ),
        Some(n) => Check::pass(NAME, format!("{function}: reserved concurrency {n}")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Status::*;
    use super::*;

    #[test]
    fn queue_and_concurrency_faults_fail_their_checks() {
        let q = QueueTiming {
            url: "u".into(),
            visible: 2,
            in_flight: 1,
            visibility_timeout: 2700,
            oldest_age: Figure::NoData,
            function_timeout: 450,
        };
        assert_eq!(queue_check(&q, "set", false).status, Pass);
        let short = QueueTiming {
            visibility_timeout: 30,
            ..q.clone()
        };
        let c = queue_check(&short, "set", false);
        assert_eq!(
            (c.status, c.fix.as_deref()),
            (Fail, Some("set")),
            "{}",
            c.line()
        );
        let old = QueueTiming {
            oldest_age: Figure::Value(3000),
            ..q.clone()
        };
        // Past the visibility timeout: WARN; FAIL only while the function fails.
        assert_eq!(queue_check(&old, "set", false).status, Warn);
        let young = QueueTiming {
            oldest_age: Figure::Value(30),
            ..q
        };
        assert_eq!(queue_check(&young, "set", false).status, Pass);
        let cases = [
            (None, Pass),
            (Some(0), Fail),
            (Some(2), Warn),
            (Some(10), Pass),
        ];
        for (reserved, status) in cases {
            assert_eq!(
                concurrency_check("f", reserved, "del", "raise").status,
                status,
                "{reserved:?}"
            );
        }
    }

    #[test]
    fn the_oldest_events_age_warns_then_fails_with_the_function() {
        let q = |age: Figure<i64>| QueueTiming {
            url: "https://sqs/1/jitr-FastLaneQueue".into(),
            visible: 4,
            in_flight: 0,
            visibility_timeout: 2700,
            oldest_age: age,
            function_timeout: 450,
        };
        let status =
            |age: i64, fails: bool| queue_check(&q(Figure::Value(age)), "set", fails).status;
        assert_eq!(status(SLOW_AGE, false), Pass);
        assert_eq!(status(SLOW_AGE + 1, false), Warn);
        assert_eq!(status(SLOW_AGE + 1, true), Warn);
        assert_eq!(status(2701, false), Warn);
        assert_eq!(status(2701, true), Fail);
        let c = queue_check(&q(Figure::Value(2701)), "set", true);
        assert!(
            c.detail.contains("the oldest event has waited 45 min"),
            "{}",
            c.detail
        );
        assert_eq!(
            c.fix.as_deref(),
            Some("see the function check (correct its failure first)")
        );
        let c = queue_check(&q(Figure::Value(301)), "set", false);
        assert!(c.detail.contains("longer than 5 min"), "{}", c.detail);
        // A queue whose visibility is short of six timeouts: FAIL at six timeouts.
        let short = QueueTiming {
            visibility_timeout: 600,
            ..q(Figure::Value(2701))
        };
        assert_eq!(queue_check(&short, "set", true).status, Fail);
        // What CloudWatch could not say is said, and does not judge.
        let c = queue_check(&q(Figure::Unreadable("AccessDenied".into())), "set", true);
        assert_eq!(c.status, Pass);
        assert!(
            c.detail
                .ends_with("oldest event's age could not be read from CloudWatch: AccessDenied"),
            "{}",
            c.detail
        );
        let c = queue_check(&q(Figure::NoData), "set", true);
        assert!(
            c.detail
                .ends_with("oldest event's age: no CloudWatch datapoints"),
            "{}",
            c.detail
        );
    }
}
