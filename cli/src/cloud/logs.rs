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

/// One FilterLogEvents page: (timestamp ms, message) oldest first, and the next token.
pub type Page = (Vec<(i64, String)>, Option<String>);

/// Pages read at most per pass over a window (10,000 events each at most).
const MAX_PAGES: usize = 20;
/// Passes at most: each after a bounded one reads the newer half of the previous window.
const MAX_PASSES: usize = 8;

/// Every line of `[start, end]` ms (oldest first) through `page(from,
/// token)`, which may answer empty or partial pages with a token. Within
/// the bound: when a pass reaches it, the next reads the newer half of its
/// window, so the newest lines are the ones read. Returns the lines and the
/// ms they start from.
pub fn newest_lines<E>(
    start: i64,
    end: i64,
    mut page: impl FnMut(i64, Option<String>) -> Result<Page, E>,
) -> Result<(Vec<String>, i64), E> {
    let mut from = start;
    let mut lines = Vec::new();
    for _ in 0..MAX_PASSES {
        lines.clear();
        let mut token = None;
        for _ in 0..MAX_PAGES {
            let (events, next) = page(from, token)?;
            lines.extend(events.into_iter().map(|(_, m)| m));
            token = next.filter(|t| !t.is_empty());
            if token.is_none() {
                return Ok((lines, from));
            }
        }
        from = end - (end - from) / 2;
    }
    Ok((lines, from))
}

impl Cloud {
    /// The messages of `group` over the last `seconds`, oldest first, and
    /// how many seconds back they reach; `None` when the group does not exist.
    pub fn log_window(
        &self,
        group: &str,
        seconds: i64,
    ) -> Result<Option<(Vec<String>, i64)>, AwsError> {
        let logs = aws_sdk_cloudwatchlogs::Client::new(self.config());
        let end = jitr_core::clock::unix_seconds() * 1000;
        let start = end - seconds * 1000;
        let read = newest_lines(start, end, |from, token| {
            let answer = self.block_on(
                logs.filter_log_events()
                    .log_group_name(group)
                    .start_time(from)
                    .end_time(end)
                    .set_next_token(token)
                    .send(),
            );
            let out = self
                .found(answer)?
                .ok_or(AwsError::NotFound(group.into()))?;
            let events = out
                .events()
                .iter()
                .filter_map(|e| Some((e.timestamp()?, e.message()?.to_string())))
                .collect();
            Ok((events, out.next_token().map(str::to_string)))
        });
        match read {
            Ok((lines, from)) => Ok(Some((lines, (end - from) / 1000))),
            Err(AwsError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pages as a server might answer: empty and partial ones with tokens.
    fn server(
        events: usize,
        per_page: usize,
    ) -> impl FnMut(i64, Option<String>) -> Result<Page, ()> {
        move |from, token| {
            let at: usize = token.map_or(0, |t| t.parse().unwrap());
            let all: Vec<(i64, String)> = (0..events as i64)
                .filter(|ts| *ts >= from)
                .map(|ts| (ts, format!("line {ts}")))
                .collect();
            // Every other page is empty, with a token.
            if at % 2 == 1 {
                return Ok((vec![], Some((at + 1).to_string())));
            }
            let chunk: Vec<_> = all
                .iter()
                .skip(at / 2 * per_page)
                .take(per_page)
                .cloned()
                .collect();
            let more = (at / 2 + 1) * per_page < all.len();
            Ok((chunk, more.then(|| (at + 1).to_string())))
        }
    }

    #[test]
    fn every_page_is_read_and_the_newest_lines_always() {
        // Within the bound: every line, empty pages skipped.
        let (lines, from) = newest_lines(0, 100, server(25, 4)).unwrap();
        assert_eq!(lines.len(), 25);
        assert_eq!(
            (lines[0].as_str(), lines[24].as_str(), from),
            ("line 0", "line 24", 0)
        );
        // Past the bound: a later start, still ending with the newest line.
        let (lines, from) = newest_lines(0, 1000, server(1000, 3)).unwrap();
        assert!(from > 0, "{from}");
        assert_eq!(lines.last().map(String::as_str), Some("line 999"));
        assert_eq!(lines.first().cloned(), Some(format!("line {from}")));
    }
}
