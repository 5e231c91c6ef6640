//! The runner and the report: feed schedule, predictions, mismatch marking, truth
//! tables, disagreements, JSON and JUnit shapes.

use std::path::Path;
use std::time::Duration;

use policylab::diag::{Diagnostics, Sources};
use policylab::model::Decider;
use policylab::report::{by_matches, Report};
use policylab::resolve::{Action, PolicyId, PolicyKind};
use policylab::run::{disagreements, plan, Observation, Outcome, Plan, PullResult};
use policylab::scenario::ByRef;
use rstest::rstest;

fn load_plan(rel: &str) -> Plan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    let mut sources = Sources::new();
    let mut diags = Diagnostics::new();
    let sc = policylab::scenario::load(&mut sources, &path, &mut diags)
        .unwrap_or_else(|| panic!("{}", diags.render(&sources)));
    plan(&sc, &sources)
}

fn h(n: u64) -> Duration {
    Duration::from_secs(n * 60)
}

#[test]
fn feed_pulls_follow_the_period() {
    let p = load_plan("tests/run_scenarios/feed-schedule.yaml");
    // (step number, pull time, ok?, entries)
    let pulls: Vec<(usize, Duration, bool, usize)> = p
        .steps
        .iter()
        .flat_map(|s| {
            s.pulls.iter().map(move |pl| match &pl.result {
                PullResult::Ok { entries, .. } => (s.number, pl.at, true, *entries),
                PullResult::Failed { kept, .. } => (s.number, pl.at, false, kept.unwrap_or(0)),
            })
        })
        .collect();
    assert_eq!(
        pulls,
        [
            (1, h(0), true, 2),     // applied
            (6, h(60), true, 1),    // 30m + 30m: due, the list shrank
            (10, h(120), false, 1), // the host failed: the last good list is kept
            (15, h(180), false, 1), // an error page: kept again
            (18, h(360), true, 2),  // 3h30m spans three periods: one pull at 6h
        ]
    );
    // Not due after 30 minutes: no pull at step 4.
    assert!(p.steps[3].pulls.is_empty());
    assert_eq!(p.steps[3].clock, h(30));
    let last = p.steps.last().unwrap();
    let st = &last.feeds[0];
    assert_eq!(st.last_successful_sync, Some(h(360)));
    assert_eq!(st.next_pull, Some(h(420)));
    assert_eq!(st.error, None);
    // After the failed pull the status says why and when the last good sync was.
    let failed = &p.steps[9].feeds[0];
    assert_eq!(failed.last_successful_sync, Some(h(60)));
    assert!(failed.error.as_deref().unwrap().contains("does not answer"));
}

#[test]
fn feed_list_becomes_a_network_set_and_worlds_are_shared() {
    let p = load_plan("tests/run_scenarios/feed-schedule.yaml");
    let set = |i: usize| {
        p.steps[i]
            .world
            .network_sets
            .iter()
            .find(|s| s.name == "threatfeed.hourly")
            .map(|s| {
                (
                    s.nets.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
                    s.labels.get("feed").cloned(),
                )
            })
    };
    assert_eq!(
        set(0),
        Some((
            vec![
                "10.48.255.194/32".to_string(),
                "198.51.100.66/32".to_string()
            ],
            Some("hourly".to_string())
        ))
    );
    assert_eq!(set(5).unwrap().0, ["10.48.255.194/32"]);
    // A probe step changes nothing; the pull that shrank the list does.
    assert!(p.steps[0].world_changed);
    assert!(!p.steps[1].world_changed);
    assert!(p.steps[5].world_changed);
    assert!(!p.steps[9].world_changed, "a failed pull keeps the set");
}

#[test]
fn failed_hosts_refused_ports_and_file_servers() {
    let p = load_plan("tests/run_scenarios/feed-schedule.yaml");
    let probe = |step: usize| &p.steps[step - 1].probes[0].prediction;
    assert_eq!(probe(12).outcome, Outcome::Deny);
    assert_eq!(
        probe(12).decider,
        Decider::HostDown {
            host: "feeds".into()
        }
    );
    assert_eq!(probe(16).outcome, Outcome::Allow);
    assert_eq!(probe(16).status, Some(404));
    assert_eq!(probe(20).outcome, Outcome::Refused);
    assert_eq!(probe(20).client_ip_seen, None);
    assert_eq!(probe(2).status, Some(200));
    assert_eq!(
        probe(2).client_ip_seen,
        Some("10.244.1.10".parse().unwrap())
    );
}

fn gnp(name: &str) -> PolicyId {
    PolicyId {
        kind: PolicyKind::GlobalNetworkPolicy,
        namespace: None,
        name: name.into(),
    }
}

#[rstest]
#[case::policy_name(ByRef::Policy { namespace: None, name: "security.block".into() }, "security", "security.block", true)]
#[case::default_tier_prefix(ByRef::Policy { namespace: None, name: "deny".into() }, "default", "default.deny", true)]
#[case::other_policy(ByRef::Policy { namespace: None, name: "other".into() }, "security", "security.block", false)]
#[case::namespace_differs(ByRef::Policy { namespace: Some("prod".into()), name: "security.block".into() }, "security", "security.block", false)]
#[case::end_of_tier_is_not_a_rule(ByRef::EndOfTier("security".into()), "security", "security.block", false)]
fn by_names_rules(#[case] by: ByRef, #[case] tier: &str, #[case] policy: &str, #[case] ok: bool) {
    let d = Decider::Rule {
        tier: tier.into(),
        policy: gnp(policy),
        rule_index: 0,
        action: Action::Deny,
    };
    assert_eq!(by_matches(&by, &d), ok);
}

#[rstest]
#[case::end_of_tier(ByRef::EndOfTier("default".into()), Decider::EndOfTier { tier: "default".into(), policy: gnp("x"), action: Action::Deny }, true)]
#[case::policy_end_of_tier(ByRef::Policy { namespace: None, name: "x".into() }, Decider::EndOfTier { tier: "default".into(), policy: gnp("x"), action: Action::Deny }, true)]
#[case::profile(ByRef::Profile("kns.default".into()), Decider::Profile { name: "kns.default".into(), rule_index: 0 }, true)]
#[case::profile_other(ByRef::Profile("kns.prod".into()), Decider::Profile { name: "kns.default".into(), rule_index: 0 }, false)]
#[case::no_profile(ByRef::NoProfile, Decider::NoProfile, true)]
#[case::failsafe(ByRef::Failsafe, Decider::Failsafe, true)]
#[case::failsafe_not_profile(ByRef::Failsafe, Decider::NoProfile, false)]
fn by_names_other_deciders(#[case] by: ByRef, #[case] d: Decider, #[case] ok: bool) {
    assert_eq!(by_matches(&by, &d), ok);
}

#[test]
fn mismatches_are_marked_on_their_lines() {
    let p = load_plan("tests/run_mismatch/mismatch.yaml");
    let r = Report::new(&p, &p.model_observations(), "model");
    assert_eq!(r.exit_code(), 1);
    assert_eq!(r.summary.failed_checks, 8);
    insta::assert_snapshot!(r.text());
}

#[test]
fn a_dataplane_disagreement_is_listed() {
    let p = load_plan("tests/run_mismatch/mismatch.yaml");
    let mut obs = p.model_observations();
    // The dataplane saw the first probe refused, with another decider.
    obs[0].outcome = Outcome::Refused;
    obs[0].status = None;
    obs[0].client_ip_seen = None;
    obs[0].decider = Some(Decider::NoProfile);
    let first = &p.steps[1].probes[0].prediction;
    let whats =
        |o: &Observation| -> Vec<&str> { disagreements(first, o).iter().map(|d| d.what).collect() };
    // A client address the dataplane did not see (icmp, sctp) is not compared.
    assert_eq!(whats(&obs[0]), ["outcome", "status", "decider"]);
    obs[0].client_ip_seen = Some("10.9.9.9".parse().unwrap());
    assert_eq!(whats(&obs[0]), ["outcome", "status", "clientIP", "decider"]);
    // The model's own observations never disagree.
    for (_, _, pp) in p.probes() {
        assert!(disagreements(
            &pp.prediction,
            &Observation::from_prediction(&pp.prediction)
        )
        .is_empty());
    }
    let r = Report::new(&p, &obs, "kernel");
    assert_eq!(r.summary.disagreements, 4);
    let text = r.text();
    assert!(
        text.contains(
            "    DISAGREEMENT outcome: the model predicts allow, the dataplane saw refused\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("4 disagreements with the reference model"),
        "{text}"
    );
    assert!(
        !text.contains("kernel"),
        "the text never names the dataplane"
    );
}

#[test]
fn json_and_junit_shapes() {
    let p = load_plan("tests/run_mismatch/mismatch.yaml");
    let r = Report::new(&p, &p.model_observations(), "model");
    let json: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
    assert_eq!(json["dataplane"], "model");
    assert_eq!(json["summary"]["failed_checks"], 8);
    let probe = &json["steps"][1]["probes"][0];
    assert_eq!(probe["observed"]["outcome"], "allow");
    assert_eq!(probe["checks"][0]["what"], "expect");
    assert_eq!(probe["checks"][0]["ok"], false);
    let junit = Report::junit(
        &[policylab::report::TimedReport::untimed(
            &r,
            std::time::SystemTime::UNIX_EPOCH,
        )],
        &[],
        "a-host",
    );
    // JUnit's times, timestamps and host are real: never in a snapshot.
    insta::with_settings!({filters => vec![
        (r#" time="[0-9.]+""#, r#" time="[time]""#),
        (r#" timestamp="[^"]*""#, r#" timestamp="[timestamp]""#),
        (r#" hostname="[^"]*""#, r#" hostname="[hostname]""#),
    ]}, {
        insta::assert_snapshot!("junit", junit);
    });
}

fn load_scenario(rel: &str) -> (policylab::scenario::Scenario, Sources) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    let mut sources = Sources::new();
    let mut diags = Diagnostics::new();
    let sc = policylab::scenario::load(&mut sources, &path, &mut diags)
        .unwrap_or_else(|| panic!("{}", diags.render(&sources)));
    (sc, sources)
}

#[test]
fn explain_a_probe_read_at_a_step() {
    let (sc, mut sources) = load_scenario("scenarios/002-prednat-nlb.yaml");
    let mut diags = Diagnostics::new();
    let probe = policylab::scenario::parse_probe_at(
        &sc,
        10,
        &mut sources,
        "<probe>",
        "laptop -> ${LOADBALANCER_IP}:80/http",
        &mut diags,
    )
    .unwrap_or_else(|| panic!("{}", diags.render(&sources)));
    let p = plan(&sc, &sources);
    let st = &p.steps[9];
    insta::assert_snapshot!(policylab::run::explain_probe(
        &st.world,
        &st.inventory,
        &st.failed_hosts,
        &st.feeds,
        &probe
    ));
}

/// Model decision `notracked-reply` explained: the walk-through says the reply is untracked where
/// the request was tracked, and why an http probe is denied.
#[rstest]
#[case::http("http", "client -> partner:443/http")]
#[case::tcp("tcp", "client -> partner:443/tcp")]
fn explain_a_tracked_flow_with_an_untracked_reply(#[case] name: &str, #[case] text: &str) {
    let (sc, mut sources) = load_scenario("tests/run_scenarios/untracked-reply.yaml");
    let mut diags = Diagnostics::new();
    let probe =
        policylab::scenario::parse_probe_at(&sc, 2, &mut sources, "<probe>", text, &mut diags)
            .unwrap_or_else(|| panic!("{}", diags.render(&sources)));
    let p = plan(&sc, &sources);
    let st = &p.steps[1];
    insta::assert_snapshot!(
        format!("explain_untracked_reply_{name}"),
        policylab::run::explain_probe(
            &st.world,
            &st.inventory,
            &st.failed_hosts,
            &st.feeds,
            &probe
        )
    );
}

#[rstest]
#[case::unknown_name(
    2,
    "laptp -> node-1:31024/tcp",
    "<probe>:1:1: unknown pod, outside host or node `laptp`"
)]
#[case::undefined_var(
    2,
    "laptop -> ${NOPE}:80",
    "<probe>:1:11: undefined placeholder `NOPE`"
)]
#[case::service_not_yet(
    0,
    "laptop -> svc/default/webserver-lb:80",
    "<probe>:1:1: unknown service `default/webserver-lb`"
)]
#[case::no_such_step(
    99,
    "laptop -> node-1:1",
    "step 99 does not exist: the scenario has 19 steps"
)]
fn bad_explain_probes(#[case] step: usize, #[case] text: &str, #[case] want: &str) {
    let (sc, mut sources) = load_scenario("scenarios/002-prednat-nlb.yaml");
    let mut diags = Diagnostics::new();
    let got =
        policylab::scenario::parse_probe_at(&sc, step, &mut sources, "<probe>", text, &mut diags);
    assert!(got.is_none());
    let rendered = diags.render(&sources);
    assert!(rendered.contains(want), "{rendered}");
}
