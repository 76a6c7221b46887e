//! JITR_ADMISSION=allow-list through the whole provisioning, with an
//! in-memory registry and a fake allow-list store: a listed certificate is
//! activated under its entry's name; an unlisted one is revoked "not on the
//! allow-list"; a store that cannot be read (or answers too late) fails the
//! record, so it comes back, and never admits nor revokes it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use jitr_core::admission::{AllowList, AllowListError, Entry, Listing};
use jitr_core::config::Config;
use jitr_core::deadline::Deadline;
use jitr_core::outcome::Kind;
use jitr_core::provision::{provision, provision_within, Gates};

use crate::support::registry::Registry;
use crate::support::{self, now};

/// The fake store: entries, or (`down`) every lookup failing, or (`slow`)
/// answering after that long; counts lookups.
#[derive(Default)]
struct Store {
    entries: HashMap<String, Entry>,
    down: bool,
    slow: Option<Duration>,
    lookups: Mutex<usize>,
}

impl AllowList for Store {
    async fn lookup(&self, id: &str) -> Result<Listing, AllowListError> {
        *self.lookups.lock().unwrap() += 1;
        if let Some(wait) = self.slow {
            tokio::time::sleep(wait).await;
        }
        if self.down {
            return Err(AllowListError {
                table: "allow".into(),
                reason: "connection refused".into(),
            });
        }
        Ok(match self.entries.get(id) {
            Some(e) => Listing::Listed(e.clone()),
            None => Listing::NotListed,
        })
    }
}

fn config(admission: &str) -> Config {
    support::config(&[
        ("JITR_ADMISSION", admission),
        ("JITR_ALLOW_LIST_TABLE", "jitr-allow-list"),
    ])
}

#[tokio::test]
async fn only_listed_certificates_get_in_under_their_listed_names() {
    let (listed, unlisted) = ("aa".repeat(32), "bb".repeat(32));
    let iot = Registry::default();
    iot.register(&listed, "robot-1");
    iot.register(&unlisted, "robot-2");
    let mut store = Store::default();
    store.entries.insert(
        listed.clone(),
        Entry {
            thing_name: Some("line4-robot-1".into()),
            attributes: [("batch".to_string(), "B7".to_string())].into(),
        },
    );
    let allow = config("allow-list");
    let gates = Gates::none().with_list(&store);

    let ok = provision(&iot, gates, &allow, &listed, now()).await;
    assert_eq!(ok.outcome, Kind::Activated, "{ok:?}");
    assert_eq!(ok.thing.as_deref(), Some("line4-robot-1"));
    assert_eq!(iot.status(&listed), "ACTIVE");
    let no = provision(&iot, gates, &allow, &unlisted, now()).await;
    assert_eq!(no.outcome, Kind::Rejected, "{no:?}");
    assert_eq!(no.reason.as_deref(), Some("not on the allow-list"));
    assert_eq!(iot.status(&unlisted), "REVOKED");
    let calls = iot.changes();
    assert!(
        calls.contains(&r#"CreateThing line4-robot-1 [("batch", "B7")]"#.to_string()),
        "{calls:?}"
    );
    assert!(!calls.iter().any(|c| c.contains("robot-2")), "{calls:?}");
    // One lookup per pending certificate; none for an ACTIVE one's replay.
    assert_eq!(*store.lookups.lock().unwrap(), 2);
    let replay = provision(&iot, gates, &allow, &listed, now()).await;
    assert_eq!(replay.outcome, Kind::AlreadyActive);
    assert_eq!(*store.lookups.lock().unwrap(), 2);
    // Under `any` the list is never read.
    let other = "cc".repeat(32);
    iot.register(&other, "robot-3");
    let any = provision(&iot, gates, &config("any"), &other, now()).await;
    assert_eq!(any.outcome, Kind::Activated);
    assert_eq!(*store.lookups.lock().unwrap(), 2);
}

#[tokio::test]
async fn an_unreadable_list_fails_the_record_and_admits_nothing() {
    let id = "aa".repeat(32);
    let iot = Registry::default();
    iot.register(&id, "robot-1");
    let store = Store {
        down: true,
        ..Store::default()
    };
    let gates = Gates::none().with_list(&store);
    let out = provision(&iot, gates, &config("allow-list"), &id, now()).await;
    assert_eq!(out.outcome, Kind::Failed, "{out:?}");
    assert!(out.failed() && out.transient, "{out:?}");
    let reason = out.reason.unwrap();
    assert!(
        reason.contains("allow-list") && reason.contains("connection refused"),
        "{reason}"
    );
    // Neither admitted nor revoked: the record comes back.
    assert_eq!(iot.status(&id), "PENDING_ACTIVATION");
    assert!(iot.changes().is_empty(), "{:?}", iot.changes());
    // No store configured at all: the same.
    let out = provision(&iot, Gates::none(), &config("allow-list"), &id, now()).await;
    assert_eq!(out.outcome, Kind::Failed, "{out:?}");
    assert!(out.reason.unwrap().contains("JITR_ALLOW_LIST_TABLE"));
    assert_eq!(iot.status(&id), "PENDING_ACTIVATION");
}

#[tokio::test]
async fn a_lookup_counts_against_the_deadline() {
    let id = "aa".repeat(32);
    let iot = Registry::default();
    iot.register(&id, "robot-1");
    let mut store = Store {
        slow: Some(Duration::from_secs(5)),
        ..Store::default()
    };
    store.entries.insert(id.clone(), Entry::default());
    let deadline = Deadline::after(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let gates = Gates::none().with_list(&store);
    let out = provision_within(&iot, gates, &config("allow-list"), &id, now(), deadline).await;
    assert_eq!(out.outcome, Kind::Unfinished, "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(iot.status(&id), "PENDING_ACTIVATION");
}
