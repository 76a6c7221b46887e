//! The invocation's deadline against an AWS IoT endpoint that accepts TCP
//! connections and never answers: every record is reported before the
//! deadline, through the real SDK client with the function's retry and
//! time bounds.

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_sdk_iot::config::{Credentials, Region};
use jitr_core::claims::NoClaims;
use jitr_core::deadline::Deadline;
use jitr_core::handler::{handle, HandlerError, Services};
use jitr_core::iot::SdkIot;
use serde_json::{json, Value};

use crate::support::{self, failures, now};

/// A listener on a free 127.0.0.1 port that accepts every connection, holds
/// it open and never reads or answers; stopped on drop.
struct Stall {
    port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Stall {
    fn start() -> Stall {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (accepted, stop) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (a, s) = (accepted.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(c) = conn {
                    a.fetch_add(1, Ordering::SeqCst);
                    held.push(c);
                }
            }
        });
        Stall {
            port,
            accepted,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Stall {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The function's SDK client (jitr's retries, the function's time bounds)
/// aimed at `url`.
fn function_client(url: &str) -> SdkIot {
    let conf = aws_sdk_iot::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(url)
        .retry_config(jitr_core::aws::retry_config())
        .timeout_config(jitr_core::aws::function_timeouts())
        .build();
    SdkIot {
        client: aws_sdk_iot::Client::from_conf(conf),
        endpoint: url.to_string(),
    }
}

/// The handler's answer to `payload` within `budget` from now.
async fn handled(api: &SdkIot, payload: Value, budget: Duration) -> Result<Value, HandlerError> {
    let services = Services::new(api, &NoClaims);
    let config = support::config(&[]);
    handle(&services, &config, payload, now(), Deadline::after(budget)).await
}

fn certificate_id(n: usize) -> String {
    format!("{n:064x}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_batch_is_answered_before_the_deadline_naming_every_record() {
    let stall = Stall::start();
    let api = function_client(&format!("http://127.0.0.1:{}", stall.port));
    // Seven records: five start at once, two wait for a free slot and never get one.
    let records: Vec<_> = (0..7)
        .map(|n| (format!("m{n}"), certificate_id(n)))
        .collect();
    let budget = Duration::from_secs(8);
    let started = Instant::now();
    let answer = handled(&api, support::batch(None, &records), budget)
        .await
        .unwrap();
    let answered = started.elapsed();
    assert!(
        answered < budget,
        "answered after {answered:?}, deadline {budget:?}"
    );
    assert_eq!(
        failures(&answer),
        ["m0", "m1", "m2", "m3", "m4", "m5", "m6"]
    );
    // The five first attempts each held a connection; an attempt is abandoned
    // after the function's attempt timeout (5 s) and retried on a new one.
    let accepted = stall.accepted.load(Ordering::SeqCst);
    assert!(
        accepted > 5,
        "{accepted} connections: no attempt was retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_direct_event_fails_before_the_deadline_naming_the_certificate() {
    let stall = Stall::start();
    let api = function_client(&format!("http://127.0.0.1:{}", stall.port));
    let id = certificate_id(42);
    let budget = Duration::from_secs(3);
    let started = Instant::now();
    let err = handled(&api, json!({ "certificateId": id }), budget)
        .await
        .unwrap_err();
    let answered = started.elapsed();
    assert!(
        answered < budget,
        "answered after {answered:?}, deadline {budget:?}"
    );
    assert!(
        matches!(&err, HandlerError::Unfinished { certificate_id, .. } if *certificate_id == id),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("provisioning {id} unfinished after "))
            && text.contains("safe to retry"),
        "{text}"
    );
    assert!(
        stall.accepted.load(Ordering::SeqCst) >= 1,
        "the call reached the endpoint"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_already_past_starts_nothing() {
    let stall = Stall::start();
    let api = function_client(&format!("http://127.0.0.1:{}", stall.port));
    let err = handled(
        &api,
        json!({ "certificateId": certificate_id(1) }),
        Duration::ZERO,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, HandlerError::Unfinished { .. }), "{err:?}");
    assert_eq!(stall.accepted.load(Ordering::SeqCst), 0, "no call was made");
}
