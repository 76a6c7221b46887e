//! What `jitr connect` takes from its inputs before connecting: the client
//! id (the thing name the deployment derives), the message, and whether the
//! certificate is valid now.

use std::path::Path;
use std::time::Duration;

use jitr_core::aws::AwsOptions;
use jitr_core::config::Config;
use jitr_core::naming::NameTemplate;

use crate::cloud::topic_rule::covers;
use crate::cloud::Cloud;
use crate::error::CliError;
use crate::files::read;
use crate::mqtt::AWS_IOT_MAX_PAYLOAD;

/// Why AWS IoT refuses the certificate at `now` by its validity, if it does.
pub(super) fn validity_problem(facts: &jitr_core::CertFacts, now: i64) -> Option<String> {
    use jitr_core::facts::rfc3339;
    if now > facts.not_after {
        Some(format!(
            "the certificate expired (notAfter {}); AWS IoT refuses it",
            rfc3339(facts.not_after)
        ))
    } else if now < facts.not_before {
        Some(format!(
            "the certificate is not valid yet (notBefore {}); AWS IoT refuses it",
            rfc3339(facts.not_before)
        ))
    } else {
        None
    }
}

/// The thing-name source: `chosen` (--thing-name-source), else the --stack
/// function's setting, else (when `lookup` allows) the setting of the
/// function behind the topic rule on the CA's registration topic, else the
/// function's default (the CN), with a note on stderr saying so.
pub(super) fn name_source(
    chosen: Option<NameTemplate>,
    stack: Option<&str>,
    aws: &AwsOptions,
    lookup: Lookup,
) -> Result<NameTemplate, CliError> {
    if let Some(source) = chosen {
        return Ok(source);
    }
    let Some(stack) = stack else {
        return Ok(match lookup {
            Lookup::Skip => NameTemplate::common_name(),
            Lookup::Rule { ca_id } => match found_by_rule(aws, ca_id) {
                Ok(source) => source,
                Err(why) => {
                    eprintln!(
                        "jitr: note: client id from the certificate's CN: {why}; choose with --thing-name-source, --stack or --client-id"
                    );
                    NameTemplate::common_name()
                }
            },
        });
    };
    let cloud = Cloud::connect(aws)?;
    let reading = |e| CliError::aws(format!("reading stack {stack}"), e);
    let function = match cloud.stack_parts(stack).map_err(reading)? {
        Some(parts) => parts.function,
        None => None,
    };
    let Some(name) = function else {
        return Err(CliError::invalid(
            "--stack",
            format!("no stack {stack} with a JITR function in {}", cloud.region),
        ));
    };
    let view = cloud
        .function(&name)
        .map_err(|e| CliError::aws(format!("reading function {name}"), e))?
        .ok_or_else(|| CliError::invalid("--stack", format!("function {name} not found")))?;
    let config = Config::from_lookup(|k| view.env.get(k).cloned())
        .map_err(|e| CliError::invalid(format!("--stack {stack} (function {name})"), e))?;
    Ok(config.thing_name)
}

/// Whether connect looks the deployment up to name the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Lookup {
    /// Not AWS IoT (nor an emulator): the CN, no AWS call.
    Skip,
    /// AWS IoT: the rule covering the CA with this id (`None`: the chain
    /// holds no CA certificate; any registration rule).
    Rule { ca_id: Option<String> },
}

/// How long the rule lookup may take before connect goes on with the CN.
const LOOKUP_LIMIT: Duration = Duration::from_secs(4);

/// The lookup rule: only when the broker is AWS IoT's (no --endpoint, or a
/// `*.amazonaws.com` one) or an emulator's (an AWS endpoint URL is set by
/// --endpoint-url or AWS_ENDPOINT_URL[_IOT]); never for another broker.
pub(super) fn lookup(
    endpoint: Option<&str>,
    endpoint_url_set: bool,
    ca_id: Option<String>,
) -> Lookup {
    let host = endpoint.map(|e| e.rsplit_once(':').map_or(e, |(h, _)| h));
    let aws = match host {
        None => true,
        Some(h) => h.to_ascii_lowercase().ends_with(".amazonaws.com") || endpoint_url_set,
    };
    if aws {
        Lookup::Rule { ca_id }
    } else {
        Lookup::Skip
    }
}

/// The naming of the function behind the registration rule covering
/// `ca_id`, within [`LOOKUP_LIMIT`]; `Err` says why there is none.
fn found_by_rule(aws: &AwsOptions, ca_id: Option<String>) -> Result<NameTemplate, String> {
    let aws = aws.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    // Left behind on timeout: the process does not wait for it.
    std::thread::spawn(move || {
        let _ = tx.send(read_rule_function(&aws, ca_id.as_deref()));
    });
    match rx.recv_timeout(LOOKUP_LIMIT) {
        Ok(answer) => answer,
        Err(_) => Err(format!(
            "AWS did not answer within {} s",
            LOOKUP_LIMIT.as_secs()
        )),
    }
}

fn read_rule_function(
    aws: &jitr_core::aws::AwsOptions,
    ca_id: Option<&str>,
) -> Result<NameTemplate, String> {
    let cloud = Cloud::connect(aws).map_err(|e| format!("AWS cannot be asked ({e})"))?;
    let d = cloud
        .deployment(None, ca_id)
        .map_err(|e| format!("reading the deployment failed ({e})"))?
        .unwrap_or_default();
    let Some(rule) = d
        .rule
        .filter(|r| ca_id.is_none_or(|id| covers(&r.topic, id)))
    else {
        return Err("no topic rule receives this CA's registrations".into());
    };
    let Some(function) = d.function else {
        return Err(format!("topic rule {} leads to no function", rule.name));
    };
    let config = Config::from_lookup(|k| function.env.get(k).cloned()).map_err(|e| {
        format!(
            "function {} (found by topic rule {}): {e}",
            function.name, rule.name
        )
    })?;
    Ok(config.thing_name)
}

/// The client id: the thing name the function derives from the certificate
/// under `source` (core's own derivation, so the two agree).
pub(super) fn thing_name(
    source: NameTemplate,
    facts: &jitr_core::CertFacts,
) -> Result<String, String> {
    jitr_core::plan::named_by(&source, facts, &facts.certificate_id).map_err(|e| {
        format!("{e}, so it has no client id under the thing-name template {source}; pass --client-id or --thing-name-source")
    })
}

/// The message's bytes: `file` (--message-file), else `text` (--message);
/// refused before connecting when over AWS IoT's limit.
pub(super) fn message(file: Option<&Path>, text: &str) -> Result<Vec<u8>, CliError> {
    let (bytes, what) = match file {
        Some(path) => (read(path)?, path.display().to_string()),
        None => (text.as_bytes().to_vec(), "--message".to_string()),
    };
    if bytes.len() > AWS_IOT_MAX_PAYLOAD {
        return Err(CliError::invalid(
            what,
            format!(
                "{} bytes is over AWS IoT's limit of {AWS_IOT_MAX_PAYLOAD} bytes (128 KiB) per message",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_aws_iot_or_an_emulator_is_asked_for_the_deployment() {
        let rule = Lookup::Rule { ca_id: None };
        assert_eq!(lookup(None, false, None), rule);
        let aws = "abc-ats.iot.eu-west-1.amazonaws.com:8883";
        assert_eq!(lookup(Some(aws), false, None), rule);
        assert_eq!(lookup(Some("127.0.0.1:8883"), false, None), Lookup::Skip);
        assert_eq!(lookup(Some("broker.example"), false, None), Lookup::Skip);
        assert_eq!(lookup(Some("127.0.0.1:8883"), true, None), rule);
    }

    #[test]
    fn validity_problems_name_the_date_that_is_passed() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["d".into()]).unwrap();
        p.not_before = time::OffsetDateTime::from_unix_timestamp(1_000_000_000).unwrap();
        p.not_after = time::OffsetDateTime::from_unix_timestamp(2_000_000_000).unwrap();
        let der = p.self_signed(&key).unwrap().der().to_vec();
        let facts = jitr_core::CertFacts::from_der(&der).unwrap();
        assert_eq!(validity_problem(&facts, 1_500_000_000), None);
        let late = validity_problem(&facts, 2_000_000_001).unwrap();
        assert!(
            late.contains("expired (notAfter 2033-05-18T03:33:20Z)"),
            "{late}"
        );
        let early = validity_problem(&facts, 999_999_999).unwrap();
        assert!(
            early.contains("not valid yet (notBefore 2001-09-09T01:46:40Z)"),
            "{early}"
        );
    }
}
