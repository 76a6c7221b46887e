//! The verifier hook's verdict on an activation.

use rcgen::{DnType, KeyPair};

use super::*;

/// The verifier hook's verdict (a fact) on an activation the function's
/// own checks chose: a refusal is a rejection with its reason; an
/// admission's choices are held to the function's rules, and an answer
/// breaking them (or no answer) is Err: the record fails.
#[test]
fn verifier_table() {
    use crate::verifier::{Choices, Verdict};
    let f = facts(
        &[
            (DnType::CommonName, "robot-1"),
            (DnType::OrganizationName, "Acme"),
        ],
        (NOW - 1, NOW + 1),
        &KeyPair::generate().unwrap(),
    );
    const HOOK: (&str, &str) = (
        "JITR_VERIFIER_FUNCTION",
        "arn:aws:lambda:eu-west-1:123456789012:function:verify",
    );
    let groups = [
        HOOK,
        ("JITR_DEVICE_GROUP", "jitr-devices"),
        ("JITR_THING_GROUPS", "fleet,line-4"),
    ];
    let pattern = [HOOK, ("JITR_THING_NAME_PATTERN", "robot-[0-9]+")];
    let ignore = [HOOK, ("JITR_ON_REJECT", "ignore")];
    let admit = |name: Option<&str>, attributes: &[(&str, &str)], groups: Option<&[&str]>| {
        Verdict::Admit(Choices {
            thing_name: name.map(str::to_string),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            thing_groups: groups.map(|g| g.iter().map(|s| s.to_string()).collect()),
        })
    };
    let long = "r".repeat(129);
    let four = [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")];
    #[rustfmt::skip]
    type Row<'a> = (&'a [(&'a str, &'a str)], Verdict, Result<&'a str, &'a str>);
    #[rustfmt::skip]
    let table: Vec<Row> = vec![
        // config, the hook's verdict, expected (Err: the record fails)
        (&[], Verdict::NotAsked, Ok("activate robot-1 [] {organization=Acme}")),
        (&[HOOK], Verdict::NotAsked, Err("the verifier hook was not asked")),
        (&[HOOK], Verdict::Reject("not in the asset library".into()), Ok("revoke: rejected by the verifier hook: not in the asset library")),
        (&ignore, Verdict::Reject("not in the asset library".into()), Ok("reject: rejected by the verifier hook: not in the asset library")),
        (&[HOOK], Verdict::Reject(" ".into()), Ok("revoke: rejected by the verifier hook: (no reason given)")),
        (&[HOOK], admit(None, &[], None), Ok("activate robot-1 [] {organization=Acme}")),
        (&[HOOK], admit(Some("line4-robot-1"), &[], None), Ok("activate line4-robot-1 [] {organization=Acme}")),
        // The hook's name is held to the pattern and AWS's rules.
        (&[HOOK], admit(Some("robot 1"), &[], None), Err("thing name \"robot 1\" does not match JITR_THING_NAME_PATTERN")),
        (&pattern, admit(Some("sensor-1"), &[], None), Err("thing name \"sensor-1\" does not match JITR_THING_NAME_PATTERN ^(?:robot-[0-9]+)$")),
        (&pattern, admit(Some("robot-7"), &[], None), Ok("activate robot-7 [] {organization=Acme}")),
        (&[HOOK, ("JITR_THING_NAME_PATTERN", ".*")], admit(Some(long.as_str()), &[], None), Err("is not a valid thing name (1-128 of a-z A-Z 0-9 : _ -)")),
        (&[HOOK, ("JITR_THING_NAME_PATTERN", ".*")], admit(Some(""), &[], None), Err("\"\" is not a valid thing name")),
        // Groups: among the configured ones; the device group always, first.
        (&groups, admit(None, &[], None), Ok("activate robot-1 [jitr-devices,fleet,line-4] {organization=Acme}")),
        (&groups, admit(None, &[], Some(&["line-4"])), Ok("activate robot-1 [jitr-devices,line-4] {organization=Acme}")),
        (&groups, admit(None, &[], Some(&[])), Ok("activate robot-1 [jitr-devices] {organization=Acme}")),
        (&groups, admit(None, &[], Some(&["jitr-devices", "fleet", "fleet"])), Ok("activate robot-1 [jitr-devices,fleet] {organization=Acme}")),
        (&groups, admit(None, &[], Some(&["other"])), Err("thing group \"other\" is not one of JITR_THING_GROUPS (fleet, line-4)")),
        (&[HOOK], admit(None, &[], Some(&["fleet"])), Err("thing group \"fleet\" is not one of JITR_THING_GROUPS (none configured)")),
        // Attributes: the hook's win, the function's fill up to the limit.
        (&[HOOK], admit(None, &[("organization", "Other"), ("batch", "B7")], None), Ok("activate robot-1 [] {batch=B7,organization=Other}")),
        (&[HOOK], admit(None, &[("a", "1"), ("b", "2"), ("c", "3")], None), Ok("activate robot-1 [] {a=1,b=2,c=3}")),
        (&[HOOK], admit(None, &four, None), Err("4 attributes, more than the 3 a thing without a thing type may carry")),
        (&[HOOK, ("JITR_THING_TYPE", "robot")], admit(None, &four, None), Ok("activate robot-1 [] {a=1,b=2,c=3,d=4,organization=Acme}")),
    ];
    let shown = |plan: &Plan| match plan {
        Plan::Activate(a) => format!(
            "activate {} [{}] {{{}}}",
            a.thing_name,
            a.thing_groups.join(","),
            a.attributes
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => short(other),
    };
    for (vars, verdict, expected) in table {
        let config = config(vars);
        assert_eq!(needs_verdict(&config), vars.contains(&HOOK), "{vars:?}");
        let o = observed("PENDING_ACTIVATION", f.clone());
        let Plan::Activate(a) = decide(&o, &config, NOW) else {
            panic!("{vars:?}: the function's own checks admit it")
        };
        match (verified(a, &verdict, &config), expected) {
            (Ok(plan), Ok(want)) => assert_eq!(shown(&plan), want, "{vars:?} {verdict:?}"),
            (Err(e), Err(want)) => assert!(e.contains(want), "{vars:?} {verdict:?}: {e}"),
            (got, want) => panic!("{vars:?} {verdict:?}: {got:?}, expected {want:?}"),
        }
    }
}
