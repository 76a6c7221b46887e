//! The AWS IoT operations provisioning calls and the account's request
//! rate for each (its quotas): what the configuration reads
//! (`JITR_API_RATES`) and what the pacer ([`crate::pacing`]) keeps to.
//! Neither depends on the other; both depend on this.

/// The AWS IoT operations provisioning calls, one quota each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    DescribeCertificate,
    UpdateCertificate,
    CreateThing,
    AttachPolicy,
    AttachThingPrincipal,
    AddThingToThingGroup,
    ListThingPrincipals,
    ListCertificatesByCA,
}

impl Op {
    pub const ALL: [Op; 8] = [
        Op::DescribeCertificate,
        Op::UpdateCertificate,
        Op::CreateThing,
        Op::AttachPolicy,
        Op::AttachThingPrincipal,
        Op::AddThingToThingGroup,
        Op::ListThingPrincipals,
        Op::ListCertificatesByCA,
    ];

    /// The operation's API name, as in AWS's quota table and `JITR_API_RATES`.
    pub fn name(self) -> &'static str {
        match self {
            Op::DescribeCertificate => "DescribeCertificate",
            Op::UpdateCertificate => "UpdateCertificate",
            Op::CreateThing => "CreateThing",
            Op::AttachPolicy => "AttachPolicy",
            Op::AttachThingPrincipal => "AttachThingPrincipal",
            Op::AddThingToThingGroup => "AddThingToThingGroup",
            Op::ListThingPrincipals => "ListThingPrincipals",
            Op::ListCertificatesByCA => "ListCertificatesByCA",
        }
    }

    /// AWS IoT's default quota, requests per second per account and region
    /// (AWS IoT Core endpoints and quotas, "AWS IoT Core API throttling
    /// limits"; UpdateCertificate's is not stated publicly: 10/s is assumed).
    pub fn aws_default(self) -> f64 {
        match self {
            Op::DescribeCertificate | Op::UpdateCertificate => 10.0,
            Op::CreateThing | Op::AttachThingPrincipal | Op::AddThingToThingGroup => 100.0,
            Op::AttachPolicy => 15.0,
            Op::ListThingPrincipals | Op::ListCertificatesByCA => 10.0,
        }
    }

    /// The operation's place in [`Op::ALL`] (and in per-operation arrays).
    pub(crate) fn index(self) -> usize {
        Op::ALL.iter().position(|o| *o == self).expect("listed")
    }
}

/// A rates specification that cannot be read (the configuration names the
/// variable it came from).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem}")]
pub struct QuotaError {
    pub problem: String,
}

/// Requests per second per operation for the whole account.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiRates([f64; 8]);

impl Default for ApiRates {
    /// AWS's default quotas.
    fn default() -> Self {
        ApiRates(Op::ALL.map(Op::aws_default))
    }
}

impl ApiRates {
    pub fn get(&self, op: Op) -> f64 {
        self.0[op.index()]
    }

    /// AWS's defaults with `spec`'s overrides: `Op=rate,Op=rate` (e.g. an
    /// account whose quota was raised: `DescribeCertificate=50`).
    pub fn parse(spec: &str) -> Result<Self, QuotaError> {
        let bad = |problem: String| QuotaError { problem };
        let mut rates = ApiRates::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, value) = item
                .split_once('=')
                .ok_or_else(|| bad(format!("\"{item}\" is not Operation=rate")))?;
            let op = Op::ALL
                .into_iter()
                .find(|o| o.name().eq_ignore_ascii_case(name.trim()))
                .ok_or_else(|| {
                    let names: Vec<_> = Op::ALL.iter().map(|o| o.name()).collect();
                    bad(format!(
                        "\"{}\" is not one of {}",
                        name.trim(),
                        names.join(", ")
                    ))
                })?;
            let rate = value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|r| r.is_finite() && *r >= 0.01 && *r <= 100_000.0)
                .ok_or_else(|| {
                    bad(format!(
                        "\"{}\" for {} is not a rate from 0.01 to 100000 requests/s",
                        value.trim(),
                        op.name()
                    ))
                })?;
            rates.0[op.index()] = rate;
        }
        Ok(rates)
    }

    /// One instance's share when `instances` run at once.
    pub fn share(&self, instances: u32) -> ApiRates {
        let n = f64::from(instances.max(1));
        ApiRates(self.0.map(|r| r / n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_aws_quotas() {
        let r = ApiRates::default();
        assert_eq!(r.get(Op::DescribeCertificate), 10.0);
        // AWS IoT Core endpoints and quotas, "AWS IoT Core API throttling
        // limits": 100/s for these three, 10/s for the describes and lists.
        assert_eq!(r.get(Op::CreateThing), 100.0);
        assert_eq!(r.get(Op::AttachThingPrincipal), 100.0);
        assert_eq!(r.get(Op::AddThingToThingGroup), 100.0);
        assert_eq!(r.get(Op::AttachPolicy), 15.0);
        assert_eq!(r.get(Op::ListThingPrincipals), 10.0);
        assert_eq!(r.get(Op::UpdateCertificate), 10.0);
    }

    #[test]
    fn overrides_and_errors() {
        for (spec, want) in [
            ("", Ok(10.0)),
            (" describecertificate = 50 ", Ok(50.0)),
            ("DescribeCertificate=0.5,CreateThing=100", Ok(0.5)),
            ("DescribeCertificate", Err("is not Operation=rate")),
            ("Describe=5", Err("is not one of DescribeCertificate")),
            ("DescribeCertificate=0", Err("is not a rate")),
            ("DescribeCertificate=fast", Err("is not a rate")),
        ] {
            match (ApiRates::parse(spec), want) {
                (Ok(r), Ok(w)) => assert_eq!(r.get(Op::DescribeCertificate), w, "{spec}"),
                (Err(e), Err(w)) => {
                    assert!(e.problem.contains(w), "{spec}: {e}");
                    assert_eq!(e.to_string(), e.problem, "{spec}");
                }
                (got, want) => panic!("{spec}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn shares_divide_by_instances() {
        let r = ApiRates::default();
        for (instances, describe) in [(0, 10.0), (1, 10.0), (2, 5.0), (20, 0.5)] {
            assert_eq!(r.share(instances).get(Op::DescribeCertificate), describe);
        }
    }
}
