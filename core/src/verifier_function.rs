//! The verifier hook ([`crate::verifier`]) as a Lambda function: one
//! synchronous Invoke (RequestResponse) per question, the function's role
//! holding `lambda:InvokeFunction` on that function only.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_lambda::error::DisplayErrorContext;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use aws_sdk_lambda::Client;

use crate::verifier::{parse_answer, Question, Verdict, Verifier, VerifierError};

/// The hook `JITR_VERIFIER_FUNCTION` names.
pub struct VerifierFunction {
    client: Client,
    arn: String,
}

impl VerifierFunction {
    /// Invokes `arn`: three attempts (throttling, 5xx, network; each
    /// attempt a new invocation of the hook, which only answers a
    /// question), 10 s an attempt, 25 s in all; the record's deadline
    /// bounds them too (they are part of provisioning).
    pub fn new(sdk: &aws_config::SdkConfig, arn: &str) -> Self {
        let config = aws_sdk_lambda::config::Builder::from(sdk)
            .retry_config(RetryConfig::standard().with_max_attempts(3))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(2))
                    .operation_attempt_timeout(Duration::from_secs(10))
                    .operation_timeout(Duration::from_secs(25))
                    .build(),
            )
            .build();
        VerifierFunction {
            client: Client::from_conf(config),
            arn: arn.to_string(),
        }
    }

    fn error(&self, reason: String) -> VerifierError {
        VerifierError {
            function: self.arn.clone(),
            reason,
        }
    }
}

/// The start of a payload, for an error message.
fn excerpt(payload: &[u8]) -> String {
    let text = String::from_utf8_lossy(payload);
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.into_owned(),
    }
}

impl Verifier for VerifierFunction {
    async fn verify(&self, question: &Question) -> Result<Verdict, VerifierError> {
        let payload = serde_json::to_vec(question).expect("a question serialises");
        let answer = self
            .client
            .invoke()
            .function_name(&self.arn)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| self.error(format!("not invoked: {}", DisplayErrorContext(e))))?;
        let body: &[u8] = answer.payload().map(|b| b.as_ref()).unwrap_or(&[]);
        if let Some(kind) = answer.function_error() {
            return Err(self.error(format!("the function failed ({kind}): {}", excerpt(body))));
        }
        parse_answer(body)
            .map_err(|e| self.error(format!("malformed answer: {e}: {}", excerpt(body))))
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use super::*;
    use crate::verifier::{Choices, Proposed};

    /// A Lambda endpoint on loopback answering one Invoke with `headers`
    /// and `body`; the request it got comes back through the handle.
    fn lambda_answering(
        headers: &'static str,
        body: &'static str,
    ) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // Headers, then as much body as Content-Length says.
            loop {
                let n = s.read(&mut buf).unwrap();
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if rest.len() >= length {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            s.write_all(response.as_bytes()).unwrap();
            String::from_utf8_lossy(&request).to_string()
        });
        (url, served)
    }

    fn hook(url: &str) -> VerifierFunction {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-1"))
            .endpoint_url(url)
            .credentials_provider(aws_sdk_lambda::config::SharedCredentialsProvider::new(
                aws_sdk_lambda::config::Credentials::new("test", "test", None, None, "test"),
            ))
            .build();
        VerifierFunction::new(
            &sdk,
            "arn:aws:lambda:eu-west-1:123456789012:function:verify",
        )
    }

    fn question() -> Question {
        Question {
            certificate_id: "ab".repeat(32),
            ca_certificate_id: Some("cd".repeat(32)),
            subject: [("CN".to_string(), "robot-1".to_string())].into(),
            subject_text: "CN=robot-1".into(),
            serial: "01".into(),
            not_before: "2026-01-01T00:00:00Z".into(),
            not_after: "2027-01-01T00:00:00Z".into(),
            key_type: "EC P-256".into(),
            proposed: Proposed {
                thing_name: "robot-1".into(),
                attributes: Default::default(),
                thing_groups: vec!["jitr-devices".into()],
            },
        }
    }

    #[tokio::test]
    async fn one_synchronous_invoke_of_the_function_with_the_question() {
        let (url, served) = lambda_answering(
            "",
            r#"{"admit": true, "reason": "listed", "thingName": "r-1"}"#,
        );
        let verdict = hook(&url).verify(&question()).await.unwrap();
        assert_eq!(
            verdict,
            Verdict::Admit(Choices {
                thing_name: Some("r-1".into()),
                ..Choices::default()
            })
        );
        let request = served.join().unwrap();
        let (head, body) = request.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with(
                "POST /2015-03-31/functions/arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Averify/invocations"
            ),
            "{head}"
        );
        assert!(
            head.to_ascii_lowercase()
                .contains("x-amz-invocation-type: requestresponse"),
            "{head}"
        );
        let sent: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(sent, serde_json::to_value(question()).unwrap());
        assert_eq!(sent["certificateId"], "ab".repeat(32));
        assert_eq!(sent["subject"]["CN"], "robot-1");
        assert_eq!(sent["proposed"]["thingGroups"][0], "jitr-devices");
    }

    #[tokio::test]
    async fn a_function_error_or_a_malformed_answer_is_no_verdict() {
        for (headers, body, expected) in [
            (
                "X-Amz-Function-Error: Unhandled\r\n",
                r#"{"errorMessage": "boom", "errorType": "Exception"}"#,
                "the function failed (Unhandled): {\"errorMessage\": \"boom\"",
            ),
            (
                "",
                "garbage",
                "malformed answer: not JSON (expected value at line 1 column 1): garbage",
            ),
            (
                "",
                r#"{"admit": "yes", "reason": ""}"#,
                r#"malformed answer: "admit" is "yes", expected true or false"#,
            ),
        ] {
            let (url, served) = lambda_answering(headers, body);
            let e = hook(&url).verify(&question()).await.unwrap_err();
            served.join().unwrap();
            assert_eq!(
                e.function,
                "arn:aws:lambda:eu-west-1:123456789012:function:verify"
            );
            assert!(e.reason.starts_with(expected), "{e}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_function_is_no_verdict() {
        // A port nothing listens on (bound, then closed).
        let url = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", l.local_addr().unwrap())
        };
        let e = hook(&url).verify(&question()).await.unwrap_err();
        assert!(e.reason.starts_with("not invoked: "), "{e}");
    }
}
