//! The stack's allow-list table (output `AllowListTableName`): what it
//! holds, read in BatchGetItem requests of 100 keys, writes and deletes in
//! BatchWriteItem requests of 25 items, a few requests in flight, paced to
//! the table's write rate; items DynamoDB leaves unprocessed (throttled)
//! are sent again after a backoff. The item format is the function's
//! (core/src/allow_list_table.rs): `certificateId`, optionally `thingName`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeysAndAttributes, PutRequest, WriteRequest,
};
use jitr_core::aws::AwsError;
use jitr_core::ratelimit::RateLimiter;

use super::Cloud;
use crate::lifecycle::allow_list::{Candidate, Held};

/// The stack output naming the table.
pub const OUTPUT: &str = "AllowListTableName";
/// Keys of one BatchGetItem, and items of one BatchWriteItem (DynamoDB's limits).
const GET_BATCH: usize = 100;
const WRITE_BATCH: usize = 25;
/// Requests in flight at once.
const WORKERS: usize = 8;
/// Attempts at items DynamoDB leaves unprocessed before the run fails.
const ATTEMPTS: u32 = 10;

/// The allow-list table of a stack.
pub struct AllowListTable<'a> {
    cloud: &'a Cloud,
    client: aws_sdk_dynamodb::Client,
    pub table: String,
}

impl Cloud {
    /// The value of `stack`'s output `key`: `Ok(None)` when the stack does
    /// not exist or has no such output.
    pub fn stack_output(&self, stack: &str, key: &str) -> Result<Option<String>, AwsError> {
        let cfn = aws_sdk_cloudformation::Client::new(self.config());
        let out = match self
            .block_on(cfn.describe_stacks().stack_name(stack).send())
            .map_err(|e| self.error(e))
        {
            Ok(out) => out,
            Err(AwsError::Refused { message, .. }) if message.contains("does not exist") => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        Ok(out
            .stacks()
            .iter()
            .flat_map(|s| s.outputs())
            .find(|o| o.output_key() == Some(key))
            .and_then(|o| o.output_value().map(str::to_string)))
    }

    /// The allow-list table of `stack` (its output [`OUTPUT`]); `None`
    /// when there is no such stack or it has no allow-list.
    pub fn stack_allow_list(&self, stack: &str) -> Result<Option<AllowListTable<'_>>, AwsError> {
        Ok(self
            .stack_output(stack, OUTPUT)?
            .map(|table| AllowListTable {
                cloud: self,
                client: aws_sdk_dynamodb::Client::new(self.config()),
                table,
            }))
    }
}

fn key(id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([(
        "certificateId".to_string(),
        AttributeValue::S(id.to_string()),
    )])
}

/// Runs `work` on each chunk of `items`, `WORKERS` at a time; `done(n)`
/// after each chunk of n; the first error ends the run.
fn in_chunks<T: Sync>(
    items: &[T],
    size: usize,
    work: impl Fn(&[T]) -> Result<(), AwsError> + Sync,
    done: impl Fn(usize) + Sync,
) -> Result<(), AwsError> {
    let chunks: Vec<&[T]> = items.chunks(size).collect();
    let next = AtomicUsize::new(0);
    let failed: Mutex<Option<AwsError>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..WORKERS.min(chunks.len()) {
            s.spawn(|| loop {
                if failed.lock().unwrap().is_some() {
                    return;
                }
                let Some(chunk) = chunks.get(next.fetch_add(1, Ordering::SeqCst)) else {
                    return;
                };
                match work(chunk) {
                    Ok(()) => done(chunk.len()),
                    Err(e) => {
                        failed.lock().unwrap().get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    match failed.into_inner().unwrap() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The wait before attempt `n` (1-based) at unprocessed items.
fn backoff(n: u32) -> Duration {
    Duration::from_millis(50 * 2u64.pow(n.min(6)))
}

impl AllowListTable<'_> {
    /// What the list holds of `ids` (eventually consistent reads: half a
    /// read unit per item).
    pub fn held(&self, ids: &[String], done: impl Fn(usize) + Sync) -> Result<Held, AwsError> {
        let held = Mutex::new(Held::new());
        in_chunks(
            ids,
            GET_BATCH,
            |chunk| {
                let mut keys: Vec<_> = chunk.iter().map(|id| key(id)).collect();
                for attempt in 1..=ATTEMPTS {
                    let ask = KeysAndAttributes::builder()
                        .set_keys(Some(keys))
                        .projection_expression("certificateId, thingName")
                        .build()
                        .expect("keys are set");
                    let out = self
                        .cloud
                        .block_on(
                            self.client
                                .batch_get_item()
                                .request_items(&self.table, ask)
                                .send(),
                        )
                        .map_err(|e| self.cloud.error(e))?;
                    for item in out
                        .responses()
                        .and_then(|r| r.get(&self.table))
                        .into_iter()
                        .flatten()
                    {
                        let Some(id) = item.get("certificateId").and_then(|v| v.as_s().ok()) else {
                            continue;
                        };
                        let name = item.get("thingName").and_then(|v| v.as_s().ok()).cloned();
                        held.lock().unwrap().insert(id.clone(), name);
                    }
                    keys = out
                        .unprocessed_keys()
                        .and_then(|u| u.get(&self.table))
                        .map(|k| k.keys().to_vec())
                        .unwrap_or_default();
                    if keys.is_empty() {
                        return Ok(());
                    }
                    std::thread::sleep(backoff(attempt));
                }
                Err(self.unprocessed(keys.len()))
            },
            done,
        )?;
        Ok(held.into_inner().unwrap())
    }

    /// Puts `entries` on the list, at most `per_second` items a second.
    pub fn put(
        &self,
        entries: &[Candidate],
        per_second: u32,
        done: impl Fn(usize) + Sync,
    ) -> Result<(), AwsError> {
        let requests: Vec<WriteRequest> = entries
            .iter()
            .map(|c| {
                let mut item = key(&c.certificate_id);
                if let Some(name) = &c.thing_name {
                    item.insert("thingName".into(), AttributeValue::S(name.clone()));
                }
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .expect("item is set");
                WriteRequest::builder().put_request(put).build()
            })
            .collect();
        self.write(&requests, per_second, done)
    }

    /// Takes `ids` off the list (deleting an absent item is no error).
    pub fn delete(
        &self,
        ids: &[String],
        per_second: u32,
        done: impl Fn(usize) + Sync,
    ) -> Result<(), AwsError> {
        let requests: Vec<WriteRequest> = ids
            .iter()
            .map(|id| {
                let delete = DeleteRequest::builder()
                    .set_key(Some(key(id)))
                    .build()
                    .expect("key is set");
                WriteRequest::builder().delete_request(delete).build()
            })
            .collect();
        self.write(&requests, per_second, done)
    }

    fn write(
        &self,
        requests: &[WriteRequest],
        per_second: u32,
        done: impl Fn(usize) + Sync,
    ) -> Result<(), AwsError> {
        // One request of 25 items per slot: `per_second` items a second.
        let pacer = RateLimiter::new((per_second as usize).div_ceil(WRITE_BATCH) as u32);
        in_chunks(
            requests,
            WRITE_BATCH,
            |chunk| {
                let mut pending = chunk.to_vec();
                for attempt in 1..=ATTEMPTS {
                    pacer.wait();
                    let out = self
                        .cloud
                        .block_on(
                            self.client
                                .batch_write_item()
                                .request_items(&self.table, pending)
                                .send(),
                        )
                        .map_err(|e| self.cloud.error(e))?;
                    pending = out
                        .unprocessed_items()
                        .and_then(|u| u.get(&self.table))
                        .cloned()
                        .unwrap_or_default();
                    if pending.is_empty() {
                        return Ok(());
                    }
                    std::thread::sleep(backoff(attempt));
                }
                Err(self.unprocessed(pending.len()))
            },
            done,
        )
    }

    /// Takes those of `ids` that are on the list off it (after `jitr
    /// device revoke`); how many were.
    pub fn take_off(&self, ids: &[String]) -> Result<usize, AwsError> {
        let held = self.held(ids, |_| {})?;
        let on_list: Vec<String> = ids
            .iter()
            .filter(|id| held.contains_key(*id))
            .cloned()
            .collect();
        self.delete(&on_list, 4000, |_| {})?;
        Ok(on_list.len())
    }

    fn unprocessed(&self, n: usize) -> AwsError {
        AwsError::Throttled {
            code: "UnprocessedItems".into(),
            message: format!(
                "table {}: {n} item(s) still unprocessed after {ATTEMPTS} attempts; run the command again (it is idempotent)",
                self.table
            ),
        }
    }
}
