//! The shared claims ([`crate::claims`]) in a DynamoDB table: one item per
//! certificate, `certificateId` (key), `state` ("claimed" or "done"),
//! `owner` (the claiming instance) and `expiresAt` (Unix seconds, also the
//! table's TTL attribute, so old items go away by themselves). Every
//! decision is one conditional write, so two instances never both hold a
//! claim. One more item, `certificateId` = `instances` (never a certificate
//! id, which is 64 hex digits), holds each working instance's heartbeat
//! (`beat_<owner>` for the bulk lane, `beat_fast_<owner>` for the fast
//! lane: counted until, Unix ms), from which every instance learns how many
//! share the account's rates, and the fast lane whether the bulk lane works.

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use tokio::sync::Semaphore;

use crate::claims::{self, Claim, Claims, ClaimsError};
use crate::lane::Lane;
use crate::pacing::Share;

const CLAIMED: &str = "claimed";
const DONE: &str = "done";

/// Claims in a table (`JITR_CLAIMS_TABLE` in the function: [`crate::config::Config::claims_table`]).
pub struct ClaimsTable {
    client: Client,
    table: String,
    /// This instance, as the `owner` of its claims.
    owner: String,
    /// Requests in flight at once: a batch starts a hundred certificates
    /// together, and a hundred simultaneous requests would wait on each
    /// other past their timeouts instead of queueing here.
    in_flight: Semaphore,
    /// Set to the instances working at each beat (see [`Share`]).
    share: Option<Share>,
    /// Beats seen long gone at the last beat: removed at the next.
    stale: std::sync::Mutex<Vec<String>>,
}

/// The heartbeats' item.
const INSTANCES: &str = "instances";
/// A heartbeat attribute's name: this prefix, the fast lane's mark if it
/// is the fast lane's, and the owner (hex digits, never the mark).
const BEAT_PREFIX: &str = "beat_";
const FAST_MARK: &str = "fast_";

/// The attribute holding `owner`'s beat for `lane`.
fn beat_name(owner: &str, lane: Lane) -> String {
    match lane {
        Lane::Bulk => format!("{BEAT_PREFIX}{owner}"),
        Lane::Fast => format!("{BEAT_PREFIX}{FAST_MARK}{owner}"),
    }
}

/// The beats in the instances item (attribute name, value).
fn beats<'a>(
    item: impl IntoIterator<Item = (&'a String, &'a AttributeValue)>,
) -> Vec<claims::Beat<'a>> {
    item.into_iter()
        .filter_map(|(name, value)| {
            let until = value.as_n().ok()?.parse::<i64>().ok()?;
            let owner = name.strip_prefix(BEAT_PREFIX)?;
            let (lane, owner) = match owner.strip_prefix(FAST_MARK) {
                Some(owner) => (Lane::Fast, owner),
                None => (Lane::Bulk, owner),
            };
            Some(claims::Beat {
                name,
                owner,
                lane,
                until,
            })
        })
        .collect()
}

/// Table requests one instance has in flight at once.
const IN_FLIGHT: usize = 16;

impl ClaimsTable {
    /// Claims in `table` (the configuration's `claims_table`) for this
    /// instance, named by a token random per process.
    pub fn for_this_instance(sdk: &aws_config::SdkConfig, table: &str) -> Self {
        Self::new(sdk, table, &crate::random::token())
    }

    /// Claims in `table` for the instance named `owner`. The client gives
    /// up within seconds (three attempts, 5 s in all), not the IoT client's
    /// 20 s: the claims only save quota, and a certificate is provisioned
    /// without one rather than late.
    pub fn new(sdk: &aws_config::SdkConfig, table: &str, owner: &str) -> Self {
        ClaimsTable {
            client: quick_client(sdk),
            table: table.to_string(),
            owner: owner.to_string(),
            in_flight: Semaphore::new(IN_FLIGHT),
            share: None,
            stale: Default::default(),
        }
    }

    /// Keeps `share` at the count of instances working, at every beat.
    pub fn sharing(self, share: Share) -> Self {
        ClaimsTable {
            share: Some(share),
            ..self
        }
    }

    fn error<E: ProvideErrorMetadata + std::error::Error + 'static>(
        &self,
        e: SdkError<E>,
    ) -> ClaimsError {
        ClaimsError {
            table: self.table.clone(),
            reason: DisplayErrorContext(e).to_string(),
        }
    }
}

fn key(id: &str) -> AttributeValue {
    AttributeValue::S(id.to_string())
}

impl Claims for ClaimsTable {
    async fn claim(&self, id: &str, now: i64, until: i64) -> Result<Claim, ClaimsError> {
        let _turn = self.in_flight.acquire().await.expect("never closed");
        let answer = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("certificateId", key(id))
            .update_expression("SET #state = :claimed, #owner = :me, expiresAt = :until")
            .condition_expression(
                "attribute_not_exists(certificateId) OR expiresAt < :now \
                 OR (#state = :claimed AND #owner = :me)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":claimed", AttributeValue::S(CLAIMED.into()))
            .expression_attribute_values(":me", AttributeValue::S(self.owner.clone()))
            .expression_attribute_values(":until", AttributeValue::N(until.to_string()))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match answer {
            Ok(_) => Ok(Claim::Mine),
            Err(SdkError::ServiceError(e)) => match e.err() {
                // Held by another claim: which kind, from the item as it was.
                UpdateItemError::ConditionalCheckFailedException(held) => {
                    let state = held
                        .item()
                        .and_then(|item| item.get("state"))
                        .and_then(|v| v.as_s().ok());
                    Ok(match state.map(String::as_str) {
                        Some(DONE) => Claim::Done,
                        _ => Claim::Elsewhere,
                    })
                }
                _ => Err(self.error(SdkError::ServiceError(e))),
            },
            Err(e) => Err(self.error(e)),
        }
    }

    async fn finish(&self, id: &str, until: i64) -> Result<(), ClaimsError> {
        let _turn = self.in_flight.acquire().await.expect("never closed");
        self.client
            .put_item()
            .table_name(&self.table)
            .item("certificateId", key(id))
            .item("state", AttributeValue::S(DONE.into()))
            .item("owner", AttributeValue::S(self.owner.clone()))
            .item("expiresAt", AttributeValue::N(until.to_string()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    /// One write: this instance's beat for `lane` in, long-gone beats out,
    /// every beat back; the share follows the count.
    async fn beat(&self, now_ms: i64, lane: Lane) -> Result<(), ClaimsError> {
        let _turn = self.in_flight.acquire().await.expect("never closed");
        let stale = std::mem::take(&mut *self.stale.lock().unwrap());
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("certificateId", key(INSTANCES))
            .expression_attribute_names("#me", beat_name(&self.owner, lane))
            .expression_attribute_values(
                ":until",
                AttributeValue::N((now_ms + claims::BEAT_LEASE_MS).to_string()),
            )
            // The item goes (TTL) an hour after the last beat.
            .expression_attribute_values(
                ":expires",
                AttributeValue::N((now_ms / 1000 + 3600).to_string()),
            )
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        let mut expression = "SET #me = :until, expiresAt = :expires".to_string();
        for (i, name) in stale.iter().enumerate() {
            let placeholder = format!("#s{i}");
            expression.push_str(if i == 0 { " REMOVE " } else { ", " });
            expression.push_str(&placeholder);
            update = update.expression_attribute_names(placeholder, name);
        }
        let answer = update
            .update_expression(expression)
            .send()
            .await
            .map_err(|e| self.error(e))?;
        let item = answer.attributes.unwrap_or_default();
        let now = claims::working(beats(&item), &self.owner, now_ms);
        // At most 20 removed at a time (an expression's size is bounded).
        *self.stale.lock().unwrap() = now.stale.into_iter().take(20).map(String::from).collect();
        if let Some(share) = &self.share {
            share.set_working(now.instances);
        }
        tracing::debug!(instances = now.instances, lane = ?lane, "heartbeat");
        Ok(())
    }

    /// The beats read back from a write that adds none (the role holds no
    /// `dynamodb:GetItem` on this table, and needs none): it only keeps the
    /// item's expiry, as a beat does.
    async fn bulk_working(&self, now_ms: i64) -> Result<bool, ClaimsError> {
        let _turn = self.in_flight.acquire().await.expect("never closed");
        let answer = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("certificateId", key(INSTANCES))
            .update_expression("SET expiresAt = :expires")
            .expression_attribute_values(
                ":expires",
                AttributeValue::N((now_ms / 1000 + 3600).to_string()),
            )
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| self.error(e))?;
        let item = answer.attributes.unwrap_or_default();
        Ok(claims::working(beats(&item), &self.owner, now_ms).bulk)
    }

    async fn release(&self, id: &str) -> Result<(), ClaimsError> {
        let _turn = self.in_flight.acquire().await.expect("never closed");
        let answer = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("certificateId", key(id))
            .condition_expression("#state = :claimed AND #owner = :me")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":claimed", AttributeValue::S(CLAIMED.into()))
            .expression_attribute_values(":me", AttributeValue::S(self.owner.clone()))
            .send()
            .await;
        match answer {
            Ok(_) => Ok(()),
            // Not ours any more (it lapsed and was claimed again, or is done): leave it.
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(())
            }
            Err(e) => Err(self.error(e)),
        }
    }
}

/// A DynamoDB client that gives up within seconds (`quick.rs`): the
/// claims and the allow-list are read inside an invocation's deadline.
pub(crate) fn quick_client(sdk: &aws_config::SdkConfig) -> Client {
    let config = aws_sdk_dynamodb::config::Builder::from(sdk)
        .retry_config(crate::quick::retries())
        .timeout_config(crate::quick::timeouts())
        .build();
    Client::from_conf(config)
}
