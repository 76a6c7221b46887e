//! [`EventSink`] over EventBridge's PutEvents (`JITR_EVENT_BUS`): each
//! batch in one call to the configured bus; the function's role may put
//! events on that bus only.

use aws_sdk_eventbridge::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;

use crate::events::{DeviceEvent, EventSink, Sent, SinkError, SOURCE};

/// PutEvents to one bus.
pub struct SdkEvents {
    client: Client,
    bus: String,
}

impl SdkEvents {
    /// Events to `bus` (a name; checked at start-up by [`crate::config`]).
    /// The client gives up within seconds (`quick.rs`): the answer
    /// waits for the events, and a lost event is only logged.
    pub fn new(sdk: &aws_config::SdkConfig, bus: &str) -> Self {
        let config = aws_sdk_eventbridge::config::Builder::from(sdk)
            .retry_config(crate::quick::retries())
            .timeout_config(crate::quick::timeouts())
            .build();
        SdkEvents {
            client: Client::from_conf(config),
            bus: bus.to_string(),
        }
    }

    fn entry(&self, e: &DeviceEvent) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .source(SOURCE)
            .detail_type(e.detail_type.name())
            .detail(e.detail_json())
            .event_bus_name(&self.bus)
            .build()
    }
}

/// An SDK failure as the code the log names and a sentence.
fn sink_error<E: ProvideErrorMetadata + std::error::Error + 'static>(e: SdkError<E>) -> SinkError {
    let code = match &e {
        SdkError::TimeoutError(_) => Some("Timeout".to_string()),
        SdkError::DispatchFailure(_) => Some("Unreachable".to_string()),
        _ => e.code().map(str::to_string),
    };
    SinkError {
        code: code.unwrap_or_else(|| "Unknown".into()),
        message: aws_sdk_eventbridge::error::DisplayErrorContext(e).to_string(),
    }
}

impl EventSink for SdkEvents {
    async fn put(&self, batch: &[DeviceEvent]) -> Result<Sent, SinkError> {
        let entries = batch.iter().map(|e| self.entry(e)).collect();
        let answer = self
            .client
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(sink_error)?;
        let failed = usize::try_from(answer.failed_entry_count()).unwrap_or(0);
        let error_code = answer
            .entries()
            .iter()
            .find_map(|e| e.error_code())
            .map(str::to_string);
        Ok(Sent { failed, error_code })
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_eventbridge::operation::put_events::{PutEventsError, PutEventsOutput};
    use aws_sdk_eventbridge::types::PutEventsResultEntry;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    use super::*;
    use crate::events::{events_of, DetailType};
    use crate::outcome::{Kind, Outcome};

    const ID: &str = "1111111111111111111111111111111111111111111111111111111111111111";

    fn events() -> Vec<DeviceEvent> {
        let mut o = Outcome::without_calls(ID, Kind::Activated, "");
        o.thing = Some("robot-1".into());
        o.reason = None;
        o.ca_certificate_id = Some("ca".into());
        let mut rejected = Outcome::without_calls(ID, Kind::Rejected, "bad name");
        rejected.certificate_id = "2".repeat(64);
        rejected.ca_certificate_id = Some("ca".into());
        let mut all = events_of(&o);
        all.extend(events_of(&rejected));
        all
    }

    /// The request on the wire: one entry per event, from `jitr`, with its
    /// detail type and detail, to the configured bus.
    #[tokio::test]
    async fn each_event_is_an_entry_for_the_bus() {
        let put = mock!(Client::put_events).then_compute_output(|req| {
            let entries = req.entries();
            assert_eq!(entries.len(), 2);
            for e in entries {
                assert_eq!(e.source(), Some("jitr"));
                assert_eq!(e.event_bus_name(), Some("jitr-devices"));
                let detail: serde_json::Value = serde_json::from_str(e.detail().unwrap()).unwrap();
                assert_eq!(detail["caCertificateId"], "ca");
            }
            assert_eq!(
                entries[0].detail_type(),
                Some(DetailType::Provisioned.name())
            );
            assert_eq!(entries[1].detail_type(), Some("Device rejected"));
            PutEventsOutput::builder()
                .failed_entry_count(0)
                .entries(PutEventsResultEntry::builder().event_id("e1").build())
                .entries(PutEventsResultEntry::builder().event_id("e2").build())
                .build()
        });
        let sink = SdkEvents {
            client: mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&put]),
            bus: "jitr-devices".into(),
        };
        assert_eq!(sink.put(&events()).await, Ok(Sent::default()));
        assert_eq!(put.num_calls(), 1);
    }

    /// Refused entries are counted with their code; a refused call is an error with its code.
    #[tokio::test]
    async fn refusals_carry_their_codes() {
        let partly = mock!(Client::put_events).then_output(|| {
            PutEventsOutput::builder()
                .failed_entry_count(1)
                .entries(PutEventsResultEntry::builder().event_id("e1").build())
                .entries(
                    PutEventsResultEntry::builder()
                        .error_code("InternalFailure")
                        .error_message("try again")
                        .build(),
                )
                .build()
        });
        let sink = SdkEvents {
            client: mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&partly]),
            bus: "b".into(),
        };
        let sent = sink.put(&events()).await.unwrap();
        assert_eq!(
            (sent.failed, sent.error_code.as_deref()),
            (1, Some("InternalFailure"))
        );

        let denied = mock!(Client::put_events).then_error(|| {
            PutEventsError::generic(
                aws_sdk_eventbridge::error::ErrorMetadata::builder()
                    .code("AccessDeniedException")
                    .message("not authorized to perform: events:PutEvents")
                    .build(),
            )
        });
        let sink = SdkEvents {
            client: mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&denied]),
            bus: "b".into(),
        };
        let e = sink.put(&events()).await.unwrap_err();
        assert_eq!(e.code, "AccessDeniedException");
        assert!(e.message.contains("events:PutEvents"), "{e}");
    }
}
