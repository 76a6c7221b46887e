//! The CloudWatch metrics `jitr doctor` reads (GetMetricData): which ones
//! and what they say are `doctor::metrics`'s; this reads them, as the
//! [`Query`] and [`Series`] types here.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use jitr_core::aws::AwsError;

use super::Cloud;

/// One metric to read: `id` names it in the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: String,
    pub namespace: &'static str,
    pub metric: &'static str,
    pub dimension: &'static str,
    pub value: String,
    pub stat: &'static str,
}

/// The datapoints of one answered metric (any order).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub id: String,
    pub values: Vec<f64>,
}

/// Seconds per datapoint.
const PERIOD: i32 = 60;

impl Cloud {
    /// The datapoints of `queries` over the last `seconds`, every page of one
    /// GetMetricData request.
    pub fn metric_data(&self, queries: &[Query], seconds: i64) -> Result<Vec<Series>, AwsError> {
        let cw = aws_sdk_cloudwatch::Client::new(self.config());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let asked: Vec<MetricDataQuery> = queries.iter().map(query).collect();
        let pages = self.all_pages(|token| {
            let call = cw
                .get_metric_data()
                .set_metric_data_queries(Some(asked.clone()))
                .start_time(DateTime::from_secs(now - seconds))
                .end_time(DateTime::from_secs(now))
                .set_next_token(token);
            async move {
                let out = call.send().await.map_err(|e| self.error(e))?;
                let series: Vec<Series> = out
                    .metric_data_results()
                    .iter()
                    .map(|r| Series {
                        id: r.id().unwrap_or_default().to_string(),
                        values: r.values().to_vec(),
                    })
                    .collect();
                Ok((series, out.next_token().map(str::to_string)))
            }
        })?;
        // A metric's datapoints may come over several pages.
        let mut by_id: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for s in pages {
            by_id.entry(s.id).or_default().extend(s.values);
        }
        Ok(by_id
            .into_iter()
            .map(|(id, values)| Series { id, values })
            .collect())
    }
}

fn query(q: &Query) -> MetricDataQuery {
    let metric = Metric::builder()
        .namespace(q.namespace)
        .metric_name(q.metric)
        .dimensions(
            Dimension::builder()
                .name(q.dimension)
                .value(&q.value)
                .build(),
        )
        .build();
    MetricDataQuery::builder()
        .id(&q.id)
        .metric_stat(
            MetricStat::builder()
                .metric(metric)
                .period(PERIOD)
                .stat(q.stat)
                .build(),
        )
        .return_data(true)
        .build()
}
