//! The allow-list ([`crate::admission`]) in a DynamoDB table: one item per
//! certificate, `certificateId` (key, 64 lowercase hex digits), optionally
//! `thingName` (S) and `attributes` (M of S) from the device's manifest.
//! One strongly consistent GetItem per certificate (a device allowed a
//! moment before its first connect is found), nothing else: the function's
//! role holds dynamodb:GetItem on this table only.

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

use crate::admission::{AllowList, AllowListError, Entry, Listing};
use crate::config::Config;

/// The allow-list table (`JITR_ALLOW_LIST_TABLE` in the function).
pub struct AllowListTable {
    client: Client,
    table: String,
}

impl AllowListTable {
    /// The table `config` names (`JITR_ALLOW_LIST_TABLE`), or None when it
    /// names none: the function's and `jitr provision`/`reconcile`'s list
    /// (under `JITR_ADMISSION=allow-list` the configuration holds one).
    pub fn for_config(sdk: &aws_config::SdkConfig, config: &Config) -> Option<Self> {
        let table = config.allow_list_table.as_deref()?;
        Some(Self::new(sdk, table))
    }

    /// Lookups in `table`: three attempts, 5 s in all; the invocation's
    /// deadline bounds them too (they are part of provisioning).
    pub fn new(sdk: &aws_config::SdkConfig, table: &str) -> Self {
        AllowListTable {
            client: crate::claims_table::quick_client(sdk),
            table: table.to_string(),
        }
    }
}

/// The entry an item holds (the key aside).
pub fn entry_of(item: &std::collections::HashMap<String, AttributeValue>) -> Entry {
    Entry {
        thing_name: item
            .get("thingName")
            .and_then(|v| v.as_s().ok())
            .filter(|s| !s.is_empty())
            .cloned(),
        attributes: item
            .get("attributes")
            .and_then(|v| v.as_m().ok())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_s().ok()?.clone())))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

impl AllowList for AllowListTable {
    async fn lookup(&self, certificate_id: &str) -> Result<Listing, AllowListError> {
        let answer = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(
                "certificateId",
                AttributeValue::S(certificate_id.to_ascii_lowercase()),
            )
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AllowListError {
                table: self.table.clone(),
                reason: DisplayErrorContext(e).to_string(),
            })?;
        Ok(match answer.item {
            Some(item) => Listing::Listed(entry_of(&item)),
            None => Listing::NotListed,
        })
    }
}
