//! `jitr connect`'s attempts: each one publishes or is refused; after a
//! refusal that cannot say why, AWS IoT is asked what it holds of the
//! certificate, and the next try waits an exponential, jittered delay.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::refusal::{self, Held};
use crate::mqtt::{Failure, Refusal, Session};
use crate::report::{outcomes, Output};

/// No single attempt waits longer than this.
const ATTEMPT_LIMIT: Duration = Duration::from_secs(10);
/// The first retry waits about this long; each later one twice as long, up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(500);
const MAX_DELAY: Duration = Duration::from_secs(8);

outcomes! {
    /// How one try ended.
    pub(super) enum Tried {
        Published => "published",
        Refused => "refused",
    }
}

/// One try, as reported.
#[derive(Debug, Serialize)]
pub(super) struct Attempt {
    pub(super) attempt: u32,
    /// Milliseconds since the command started.
    pub(super) at_ms: u64,
    pub(super) result: Tried,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) detail: Option<String>,
}

/// The delay before retry `n` (1-based): exponential, capped, with half of it
/// random ("equal jitter") so a fleet does not retry in step.
fn backoff(n: u32, random: f64) -> Duration {
    let full = FIRST_DELAY
        .saturating_mul(1u32 << (n - 1).min(16))
        .min(MAX_DELAY);
    full / 2 + full.mul_f64(random.clamp(0.0, 1.0) / 2.0)
}

/// What connect knows of the device besides its session.
pub(super) struct Device {
    pub(super) certificate_id: String,
    /// Certificates in the bundle (1: the device's alone).
    pub(super) chain_len: usize,
    /// How to ask AWS IoT about the certificate, when the broker is AWS
    /// IoT's or an emulator's.
    pub(super) aws: Option<jitr_core::aws::AwsOptions>,
}

/// The last refusal: its kind, and what AWS IoT said of the certificate.
#[derive(Default)]
pub(super) struct Last {
    pub(super) kind: Option<Refusal>,
    pub(super) held: Option<Held>,
    /// AWS did not answer once (no credentials, unreachable): not asked again.
    pub(super) aws_silent: bool,
}

/// The failure's sentence and whether retrying can help: after a refusal
/// that cannot say why (closed, or a CONNACK code), from what AWS IoT holds
/// of the certificate when it can be asked.
fn explain(failure: Failure, device: &Device, last: &mut Last) -> (String, bool) {
    last.kind = Some(failure.kind);
    last.held = None;
    let aws = device.aws.as_ref().filter(|_| !last.aws_silent);
    if let Some(aws) = aws.filter(|_| refusal::worth_asking(failure.kind)) {
        let held = refusal::ask(aws, &device.certificate_id);
        last.aws_silent = held.is_none();
        if let Some(held) = held {
            let (why, retry) = refusal::judge(&held, &device.certificate_id);
            // A timeout says more than a status that does not explain it.
            if failure.kind != Refusal::Timeout || !retry {
                last.held = Some(held);
                return (why, retry);
            }
        }
    }
    (failure.reason, !failure.kind.is_final())
}

/// Attempts until one publishes, one fails for good, or the next would start
/// after `deadline`; each attempt is printed as it ends (unless --json).
pub(super) async fn retry(
    session: &Session,
    (topic, message): (&str, &[u8]),
    device: &Device,
    deadline: Instant,
    out: &Output,
) -> (Vec<Attempt>, Last) {
    let started = Instant::now();
    let mut attempts = Vec::new();
    let mut last = Last::default();
    for n in 1u32.. {
        let limit = ATTEMPT_LIMIT.min(deadline.saturating_duration_since(Instant::now()));
        let at_ms = started.elapsed().as_millis() as u64;
        let at = at_ms as f64 / 1000.0;
        let failure = match session.publish_once(topic, message, limit).await {
            Ok(()) => {
                if out.chatty() {
                    eprintln!("attempt {n} at {at:.1} s: connected, published on {topic} (PUBACK)");
                }
                attempts.push(Attempt {
                    attempt: n,
                    at_ms,
                    result: Tried::Published,
                    detail: None,
                });
                break;
            }
            Err(failure) => failure,
        };
        let (reason, retrying_helps) = explain(failure, device, &mut last);
        let delay = backoff(n, jitr_core::random::unit());
        let give_up = !retrying_helps || Instant::now() + delay >= deadline;
        if out.chatty() {
            let next = if give_up {
                "giving up".to_string()
            } else {
                format!("retrying in {:.1} s", delay.as_secs_f64())
            };
            eprintln!("attempt {n} at {at:.1} s: {reason}; {next}");
        }
        attempts.push(Attempt {
            attempt: n,
            at_ms,
            result: Tried::Refused,
            detail: Some(reason),
        });
        if give_up {
            break;
        }
        tokio::time::sleep(delay).await;
    }
    (attempts, last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_half_a_second_up_to_eight_with_half_jitter() {
        let ms = |n, r| backoff(n, r).as_millis();
        assert_eq!((ms(1, 0.0), ms(1, 1.0)), (250, 500));
        assert_eq!((ms(2, 0.0), ms(2, 1.0)), (500, 1000));
        assert_eq!((ms(5, 0.0), ms(5, 1.0)), (4000, 8000));
        assert_eq!((ms(40, 0.0), ms(40, 1.0)), (4000, 8000));
        assert_eq!(ms(3, 0.5), 1500);
    }
}
