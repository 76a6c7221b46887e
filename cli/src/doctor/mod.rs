//! `jitr doctor`'s checks, as pure functions of what was observed: each
//! returns [`Check`]s (PASS, WARN or FAIL, what it saw, the fix). The
//! command (`commands/doctor/`) gathers the observations.

pub mod ca;
pub mod certificate;
mod checks;
pub mod deployment;
pub mod device;
mod event_path;
pub mod fixes;
pub mod function;
pub mod metrics;
pub mod permissions;
pub mod policy;
pub mod queue;

use serde::Serialize;

pub use checks::CHECKS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    /// One sentence (the command to run where there is one); `None` on PASS.
    pub fix: Option<String>,
}

impl Check {
    /// Every name is one the book lists (`CHECKS`); tests catch a new one.
    fn named(name: &'static str) -> &'static str {
        debug_assert!(
            CHECKS.contains(&name),
            "check {name:?} is not in doctor::CHECKS (and the book's table)"
        );
        name
    }

    pub fn pass(name: &'static str, detail: impl Into<String>) -> Self {
        Check {
            name: Self::named(name),
            status: Status::Pass,
            detail: detail.into(),
            fix: None,
        }
    }
    pub fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            name: Self::named(name),
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    pub fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            name: Self::named(name),
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// The text line: `STATUS name: detail` and, unless passing, `-> fix`.
    pub fn line(&self) -> String {
        let status = match self.status {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        };
        match &self.fix {
            Some(fix) => format!("{status} {}: {}\n     fix: {fix}", self.name, self.detail),
            None => format!("{status} {}: {}", self.name, self.detail),
        }
    }
}

/// Whole seconds as people read them ("3 h 20 min", "45 s").
pub fn duration(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} days", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_the_fix_only_when_not_passing() {
        assert_eq!(Check::pass("stack", "fine").line(), "PASS stack: fine");
        assert_eq!(
            Check::fail("endpoint", "broken", "run x").line(),
            "FAIL endpoint: broken\n     fix: run x"
        );
    }

    /// Every name a check is built with in doctor's sources is in CHECKS,
    /// and every name in CHECKS is built somewhere.
    #[test]
    fn every_check_name_is_listed_and_every_listed_one_is_built() {
        let sources = [
            include_str!("ca.rs"),
            include_str!("certificate.rs"),
            include_str!("deployment.rs"),
            include_str!("device.rs"),
            include_str!("event_path.rs"),
            include_str!("function.rs"),
            include_str!("permissions.rs"),
            include_str!("permissions/provisioning.rs"),
            include_str!("permissions/role.rs"),
            include_str!("queue.rs"),
            include_str!("../commands/doctor/mod.rs"),
            include_str!("../commands/doctor/certificate.rs"),
            include_str!("../commands/doctor/deployment.rs"),
            include_str!("../commands/doctor/device.rs"),
            include_str!("../commands/doctor/endpoint.rs"),
            include_str!("../commands/doctor/issuer.rs"),
        ];
        let built = regex::Regex::new(
            r#"(?:Check::(?:pass|warn|fail)|role_check)\(\s*"([^"]+)"|const NAME: &str = "([^"]+)""#,
        )
        .unwrap();
        let mut found = std::collections::BTreeSet::new();
        for src in sources {
            let code = src.split("#[cfg(test)]").next().unwrap();
            for c in built.captures_iter(code) {
                found.insert(c.get(1).or(c.get(2)).unwrap().as_str());
            }
        }
        let listed: std::collections::BTreeSet<&str> = CHECKS.iter().copied().collect();
        assert_eq!(listed.len(), CHECKS.len(), "a name listed twice");
        assert_eq!(found, listed);
    }

    #[test]
    fn durations_read_well() {
        let cases = [
            (-5, "0 s"),
            (45, "45 s"),
            (600, "10 min"),
            (12_000, "3 h 20 min"),
            (864_000, "10 days"),
        ];
        for (s, text) in cases {
            assert_eq!(duration(s), text);
        }
    }
}
