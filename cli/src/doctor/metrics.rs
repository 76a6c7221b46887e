//! The CloudWatch metrics doctor reads (one GetMetricData call): the
//! function's Invocations, Errors and Throttles (AWS/Lambda, summed), and
//! each event queue's ApproximateAgeOfOldestMessage (AWS/SQS, maximum).
//! Pure: which metrics to ask for, and what their answer says.

pub use crate::cloud::metrics::{Query, Series};

/// What CloudWatch answered: the series, or why none could be read.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    Read(Vec<Series>),
    Unreadable(String),
}

/// One figure from the metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Figure<T> {
    Value(T),
    /// CloudWatch answered without datapoints (nothing happened, or an
    /// emulator that keeps no metrics).
    #[default]
    NoData,
    Unreadable(String),
}

/// The function's counts over the window, from CloudWatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub invocations: u64,
    pub errors: u64,
    pub throttles: u64,
}

const COUNTS: [(&str, &str); 3] = [
    ("invocations", "Invocations"),
    ("errors", "Errors"),
    ("throttles", "Throttles"),
];

/// The queries for `function` and the event queues named `queues` (lane i is `age{i}`).
pub fn queries(function: &str, queues: &[String]) -> Vec<Query> {
    let counts = COUNTS.iter().map(|(id, metric)| Query {
        id: id.to_string(),
        namespace: "AWS/Lambda",
        metric,
        dimension: "FunctionName",
        value: function.to_string(),
        stat: "Sum",
    });
    let ages = queues.iter().enumerate().map(|(i, q)| Query {
        id: format!("age{i}"),
        namespace: "AWS/SQS",
        metric: "ApproximateAgeOfOldestMessage",
        dimension: "QueueName",
        value: q.clone(),
        stat: "Maximum",
    });
    counts.chain(ages).collect()
}

fn values<'a>(series: &'a [Series], id: &str) -> &'a [f64] {
    series
        .iter()
        .find(|s| s.id == id)
        .map_or(&[], |s| s.values.as_slice())
}

/// The function's counts, summed over the window's datapoints.
pub fn counts(reading: &Reading) -> Figure<Counts> {
    let series = match reading {
        Reading::Read(s) => s,
        Reading::Unreadable(e) => return Figure::Unreadable(e.clone()),
    };
    if COUNTS.iter().all(|(id, _)| values(series, id).is_empty()) {
        return Figure::NoData;
    }
    let sum = |id: &str| values(series, id).iter().sum::<f64>().max(0.0).round() as u64;
    Figure::Value(Counts {
        invocations: sum("invocations"),
        errors: sum("errors"),
        throttles: sum("throttles"),
    })
}

/// The oldest message's age (s) in lane `lane` over the window: the newest
/// datapoint would be the current age, but CloudWatch's order is not
/// promised, so the window's maximum (what the queue has been through).
pub fn oldest_age(reading: &Reading, lane: usize) -> Figure<i64> {
    let series = match reading {
        Reading::Read(s) => s,
        Reading::Unreadable(e) => return Figure::Unreadable(e.clone()),
    };
    values(series, &format!("age{lane}"))
        .iter()
        .copied()
        .reduce(f64::max)
        .map_or(Figure::NoData, |v| Figure::Value(v.max(0.0).round() as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(id: &str, values: &[f64]) -> Series {
        Series {
            id: id.into(),
            values: values.to_vec(),
        }
    }

    #[test]
    fn queries_ask_sums_of_the_function_and_the_maximum_age_per_lane() {
        let q = queries("jitr-fn", &["EventQueue-x".into(), "FastLane-y".into()]);
        let ids: Vec<_> = q.iter().map(|q| q.id.as_str()).collect();
        assert_eq!(ids, ["invocations", "errors", "throttles", "age0", "age1"]);
        assert_eq!(
            (
                q[1].namespace,
                q[1].metric,
                q[1].dimension,
                q[1].value.as_str(),
                q[1].stat
            ),
            ("AWS/Lambda", "Errors", "FunctionName", "jitr-fn", "Sum")
        );
        assert_eq!(
            (
                q[4].namespace,
                q[4].metric,
                q[4].dimension,
                q[4].value.as_str(),
                q[4].stat
            ),
            (
                "AWS/SQS",
                "ApproximateAgeOfOldestMessage",
                "QueueName",
                "FastLane-y",
                "Maximum"
            )
        );
    }

    #[test]
    fn counts_sum_the_datapoints_or_say_there_were_none() {
        let r = Reading::Read(vec![
            series("invocations", &[3.0, 4.0]),
            series("errors", &[1.0]),
            series("throttles", &[]),
            series("age0", &[100.0]),
        ]);
        assert_eq!(
            counts(&r),
            Figure::Value(Counts {
                invocations: 7,
                errors: 1,
                throttles: 0
            })
        );
        let empty = Reading::Read(vec![series("invocations", &[]), series("age0", &[5.0])]);
        assert_eq!(counts(&empty), Figure::NoData);
        let denied = Reading::Unreadable("AccessDenied: cloudwatch:GetMetricData".into());
        assert_eq!(
            counts(&denied),
            Figure::Unreadable("AccessDenied: cloudwatch:GetMetricData".into())
        );
    }

    #[test]
    fn the_oldest_age_is_the_lanes_maximum() {
        let r = Reading::Read(vec![
            series("age0", &[60.0, 420.4, 10.0]),
            series("age1", &[]),
        ]);
        assert_eq!(oldest_age(&r, 0), Figure::Value(420));
        assert_eq!(oldest_age(&r, 1), Figure::NoData);
        assert_eq!(oldest_age(&r, 2), Figure::NoData);
        assert!(matches!(
            oldest_age(&Reading::Unreadable("x".into()), 0),
            Figure::Unreadable(_)
        ));
    }
}
