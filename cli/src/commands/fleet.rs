//! `jitr fleet status --ca DIR|ID`: the CA's device certificates from AWS
//! IoT (ListCertificatesByCA, then DescribeCertificate for each at --rate per
//! second), and the things named by their CNs (ListThingPrincipals), sorted
//! by [`crate::lifecycle::fleet::classify`].

use crate::args::{CaTarget, FleetStatusArgs, Global};
use crate::cloud::Cloud;
use crate::error::CliError;
use crate::issue::pace::Pacer;
use crate::issue::progress;
use crate::lifecycle::fleet::{self, Cert, Finding, Window};
use crate::report::Output;

pub fn status(a: &FleetStatusArgs, g: &Global, out: &Output) -> Result<(), CliError> {
    let (ca_id, _) = super::ca_aws::resolve(&CaTarget {
        target: a.ca.clone(),
    })?;
    let cloud = Cloud::connect(&g.aws())?;
    let aws = |what: String| move |e| CliError::aws(what, e);
    let listed = cloud
        .certificates_of_ca(&ca_id)
        .map_err(aws(format!("listing the certificates of CA {ca_id}")))?;
    let pacer = Pacer::new(a.rate);
    let mut certs = Vec::with_capacity(listed.len());
    let bar = progress::bar(out.chatty(), listed.len(), "describing");
    for l in &listed {
        pacer.wait();
        bar.inc(1);
        let d = cloud
            .device_certificate(&l.certificate_id)
            .map_err(aws(format!("describing certificate {}", l.certificate_id)))?;
        let facts = d
            .as_ref()
            .and_then(|d| jitr_core::CertFacts::from_pem(d.pem.as_bytes()).ok());
        certs.push(Cert {
            certificate_id: l.certificate_id.clone(),
            status: d.as_ref().map_or(l.status.clone(), |d| d.status.clone()),
            created: l.created,
            not_after: facts.as_ref().map(|f| f.not_after),
            thing: facts
                .as_ref()
                .and_then(|f| f.common_name())
                .map(str::to_string),
        });
    }
    let mut names: Vec<&str> = certs.iter().filter_map(|c| c.thing.as_deref()).collect();
    names.sort();
    names.dedup();
    bar.finish_and_clear();
    let mut things = Vec::new();
    let bar = progress::bar(out.chatty(), names.len(), "reading things");
    for name in names {
        pacer.wait();
        bar.inc(1);
        if let Some(p) = cloud
            .thing_principals(name)
            .map_err(aws(format!("listing the principals of thing {name}")))?
        {
            things.push((name.to_string(), p.len()));
        }
    }
    bar.finish_and_clear();
    let window = Window {
        now: jitr_core::clock::unix_seconds(),
        expiring_within_days: a.expiring_within,
        pending_older_than_minutes: a.pending_older_than,
        ca: a.ca.clone(),
    };
    let status = fleet::classify(&ca_id, &certs, &things, &window);
    out.result(&status, || {
        let counts: Vec<String> = status
            .by_status
            .iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect();
        let mut text = format!(
            "CA {}: {} certificate(s){}{}\n",
            status.ca_certificate_id,
            status.certificates,
            if counts.is_empty() { "" } else { ": " },
            counts.join(", ")
        );
        let section = |title: String, findings: &[Finding]| {
            let mut t = format!("{title}: {}\n", findings.len());
            for f in findings {
                t += &format!(
                    "  {} {}: {}\n    fix: {}\n",
                    f.thing.as_deref().unwrap_or("-"),
                    f.certificate_id.as_deref().unwrap_or(""),
                    f.detail,
                    f.fix
                );
            }
            t
        };
        text += &section(
            format!("expiring within {} days", a.expiring_within),
            &status.expiring,
        );
        text += &section(
            format!("pending longer than {} minutes", a.pending_older_than),
            &status.pending,
        );
        text += &section(
            "things without certificates".into(),
            &status.things_without_certificates,
        );
        text
    });
    Ok(())
}
