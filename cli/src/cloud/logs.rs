//! The function's log lines about one certificate (CloudWatch Logs
//! FilterLogEvents), for why it was rejected.

use jitr_core::aws::AwsError;

use super::Cloud;

/// At most this many matching lines are read (the newest decide).
const MAX_LINES: i32 = 50;

impl Cloud {
    /// The messages in `group` that mention `certificate_id`, oldest first;
    /// `None` when the log group does not exist.
    pub fn log_lines(
        &self,
        group: &str,
        certificate_id: &str,
    ) -> Result<Option<Vec<String>>, AwsError> {
        let logs = aws_sdk_cloudwatchlogs::Client::new(self.config());
        let answer = self.block_on(
            logs.filter_log_events()
                .log_group_name(group)
                .filter_pattern(format!("\"{certificate_id}\""))
                .limit(MAX_LINES)
                .send(),
        );
        let Some(out) = self.found(answer)? else {
            return Ok(None);
        };
        Ok(Some(
            out.events()
                .iter()
                .filter_map(|e| e.message().map(str::to_string))
                .collect(),
        ))
    }
}
