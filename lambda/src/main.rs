//! The JITR Lambda: wires the runtime, logging, configuration and the AWS
//! IoT client to `jitr_core::handler`. All logic lives in jitr-core.
// The handler's future (a batch, its heartbeats, the pacer, the claims)
// nests deeper than the default limit when the test harness lays it out.
#![recursion_limit = "256"]

use jitr_core::aws::{self, AwsOptions};
use jitr_core::config::Config;
use jitr_core::deadline::Deadline;
use jitr_core::handler::{HandlerError, Services};
use jitr_core::iot::SdkIot;
use jitr_core::pacing::{Paced, Share};
use jitr_core::provision::Gates;
use jitr_core::recent::Recent;
use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use serde_json::Value;
use std::time::SystemTime;

/// Transient failures retried per call (the CLI's client makes 8 attempts).
const RETRIES: u32 = 7;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_logging();
    // A missing or invalid setting stops the function at start-up, named,
    // and is what Lambda answers the invocation with (its init error).
    let config = Config::from_env().inspect_err(|e| {
        tracing::error!(error = %e, "invalid configuration");
        report_init_error("InvalidConfiguration", &e.to_string());
    })?;
    let sdk = aws::load_with(&AwsOptions::default(), aws::function_timeouts()).await?;
    // The allow-list (JITR_ADMISSION=allow-list): Config refused to start
    // without its table, so under allow-list this is always Some.
    let allow_list = jitr_core::allow_list_table::AllowListTable::for_config(&sdk, &config);
    // The client sends each call once; the pacer retries transient failures
    // in slots of their own, so retries keep to the quota too.
    let sdk_api = SdkIot {
        client: aws::iot_client_without_retries(&sdk),
        endpoint: aws::endpoint_of(&sdk),
    };
    // This instance's share of the account's quotas, shared by every
    // invocation the instance serves: the quotas over the instances working
    // now (their heartbeats in the claims table), over MaxConcurrency
    // without the table.
    // Certificates it activated are not described again (devices retrying
    // while pending cause duplicate events).
    let share = Share::new(config.max_concurrency);
    let paced = Paced::new(sdk_api, &config.api_rates).sharing(share.clone());
    let api = Recent::new(paced.retrying(RETRIES));
    // Claims shared with the other instances: one provisions a certificate,
    // the others acknowledge its duplicate events without an IoT call.
    let claims = config.claims_table.as_deref().map(|table| {
        let table = jitr_core::claims_table::ClaimsTable::for_this_instance(&sdk, table);
        jitr_core::claims::RememberDone::new(table.sharing(share))
    });
    // Events downstream (JITR_EVENT_BUS): one per final outcome, best effort.
    let events = config
        .event_bus
        .as_deref()
        .map(|bus| jitr_core::events_sdk::SdkEvents::new(&sdk, bus));
    // The verifier hook (JITR_VERIFIER_FUNCTION): asked about each
    // certificate the function's own checks admit.
    let verifier = config
        .verifier_function
        .as_deref()
        .map(|arn| jitr_core::verifier_function::VerifierFunction::new(&sdk, arn));
    let services = &Services {
        api: &api,
        claims: &claims,
        gates: Gates {
            list: &allow_list,
            verifier: &verifier,
        },
        events: &events,
    };
    let config = &config;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let now = jitr_core::clock::unix_seconds();
        // Work stops a margin before Lambda's deadline, so the answer (with
        // what is unfinished) always gets out.
        let deadline = Deadline::from_lambda(event.context.deadline, SystemTime::now());
        jitr_core::handler::handle(services, config, event.payload, now, deadline)
            .await
            .map_err(diagnostic)
    }))
    .await
}

/// The error Lambda records (and routes to the on-failure destination).
fn diagnostic(e: HandlerError) -> Diagnostic {
    let error_type = match e {
        HandlerError::BadEvent(_) => "MalformedEvent",
        HandlerError::Provisioning { .. } => "ProvisioningFailed",
        HandlerError::Unfinished { .. } => "ProvisioningUnfinished",
    };
    Diagnostic {
        error_type: error_type.into(),
        error_message: e.to_string(),
    }
}

/// Posts an initialization error to the Lambda Runtime API
/// (`/runtime/init/error`), so Lambda reports `message` as the invocation's
/// error rather than only "Runtime exited". Best effort: the process exits
/// with the error either way.
fn report_init_error(error_type: &str, message: &str) {
    use std::io::{Read, Write};
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        return;
    };
    let body = serde_json::json!({ "errorType": error_type, "errorMessage": message }).to_string();
    let request = format!(
        "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {api}\r\nLambda-Runtime-Function-Error-Type: Runtime.{error_type}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let sent = std::net::TcpStream::connect(&api).and_then(|mut s| {
        s.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
        s.write_all(request.as_bytes())?;
        // Lambda answers 202; wait for it so the report is in before exit.
        s.read(&mut [0u8; 64]).map(|_| ())
    });
    if let Err(e) = sent {
        tracing::error!(error = %e, "could not report the init error to the Runtime API");
    }
}

/// JSON or text logs as Lambda's advanced logging controls ask
/// (AWS_LAMBDA_LOG_FORMAT, AWS_LAMBDA_LOG_LEVEL; RUST_LOG overrides the level).
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .unwrap_or_else(|_| "INFO".into())
        .to_lowercase();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .without_time();
    if std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        builder
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .init();
    } else {
        builder.with_ansi(false).init();
    }
}
