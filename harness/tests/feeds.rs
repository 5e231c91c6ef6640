//! Kernel tests of threat-feed pulls over real HTTP(S): a feed server in an outside
//! host's namespace, the puller in the fabric namespace, and every fault a feed's status
//! must report with a clear error.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{ip, kernel_ready};
use policylab::lab::{LabPlan, NodePlan, OutsideHostPlan};
use policylab_harness::feedserver::{FeedServer, FeedServerOptions, ScenarioCa};
use policylab_harness::puller::{PullError, PullHeader, PullRequest, Puller};
use policylab_harness::topology::{BuildOptions, Cluster};

const FEED_HOST: &str = "installer.calicocloud.io";
const ROGUE_HOST: &str = "rogue.example.test";
const IPS: &str = "/feeds/v1/ips";

fn plan(prefix: &str) -> LabPlan {
    LabPlan::builder(prefix)
        .node(NodePlan::new("node-1", "172.18.0.11".parse().expect("v4")))
        .outside(OutsideHostPlan::new("feed-server", ip("203.0.113.200")))
        .outside(OutsideHostPlan::new("rogue", ip("203.0.113.201")))
        .build()
        .expect("valid plan")
}

struct Bench {
    cluster: Cluster,
    server: FeedServer,
    puller: Puller,
}

/// A cluster with a feed server (HTTP + HTTPS with the scenario CA) and a puller in the
/// fabric that trusts the scenario CA and resolves the feed host's name.
async fn bench(prefix: &str) -> Bench {
    let cluster = Cluster::build(&plan(prefix), &BuildOptions::default())
        .await
        .expect("build");
    let host = cluster.outside_host("feed-server").expect("host").clone();
    let ca = ScenarioCa::generate(prefix).expect("ca");
    let addrs = [ip("203.0.113.200")];
    let id = ca.issue(&[FEED_HOST.to_string()], &addrs).expect("cert");
    let files = BTreeMap::from([(IPS.to_string(), b"1.2.3.4\n5.6.7.0/24\n".to_vec())]);
    let server = FeedServer::start(&host, files, FeedServerOptions::http(&addrs).with_https(id))
        .await
        .expect("feed server");
    let puller = Puller::new(cluster.fabric())
        .trust(ca.cert_der().clone())
        .resolve(FEED_HOST, &addrs)
        .resolve(ROGUE_HOST, &[ip("203.0.113.201")]);
    Bench {
        cluster,
        server,
        puller,
    }
}

fn url(scheme: &str, host: &str, path: &str) -> String {
    format!("{scheme}://{host}{path}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_over_http_and_https_and_sees_replaced_files() {
    if !kernel_ready("pulls_over_http_and_https_and_sees_replaced_files") {
        return;
    }
    let b = bench("feedok").await;
    let req = PullRequest::new(url("http", FEED_HOST, IPS))
        .with_header(PullHeader::literal("X-Api-Key", "s3cret"))
        .with_timeout(Duration::from_secs(2));
    let r = b.puller.pull(&req).await.expect("http pull");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "1.2.3.4\n5.6.7.0/24\n");

    // The headers reached the server; the client came from the fabric's gateway address.
    let seen = b.server.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].path, IPS);
    assert!(!seen[0].https);
    assert_eq!(
        seen[0].headers.get("x-api-key").map(String::as_str),
        Some("s3cret")
    );
    assert_eq!(
        seen[0].headers.get("host").map(String::as_str),
        Some(FEED_HOST)
    );
    assert_eq!(seen[0].client, ip("169.254.1.1"));

    // HTTPS with the scenario CA.
    let tls = PullRequest::new(url("https", FEED_HOST, IPS)).with_timeout(Duration::from_secs(2));
    let r = b.puller.pull(&tls).await.expect("https pull");
    assert_eq!(r.body, "1.2.3.4\n5.6.7.0/24\n");
    assert!(b.server.requests().last().expect("logged").https);

    // A `serve:` step replaces the file between two pulls.
    b.server.serve(IPS, "9.9.9.9\n");
    let r = b.puller.pull(&tls).await.expect("pull after serve");
    assert_eq!(r.body, "9.9.9.9\n");

    // An IP literal needs no name.
    let by_ip = PullRequest::new(url("http", "203.0.113.200", IPS));
    assert_eq!(
        b.puller.pull(&by_ip).await.expect("by ip").body,
        "9.9.9.9\n"
    );

    b.cluster.teardown().expect("teardown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_errors_are_distinct_and_clear() {
    if !kernel_ready("pull_errors_are_distinct_and_clear") {
        return;
    }
    let b = bench("feederr").await;
    let t = Duration::from_millis(800);

    // 404.
    let missing = PullRequest::new(url("http", FEED_HOST, "/feeds/v1/nope")).with_timeout(t);
    let e = b.puller.pull(&missing).await.expect_err("404");
    assert_eq!(
        e,
        PullError::NotFound {
            url: "http://installer.calicocloud.io/feeds/v1/nope".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "GET http://installer.calicocloud.io/feeds/v1/nope: 404 Not Found"
    );

    // Nothing listens on the port: refused, at once.
    let refused = PullRequest::new(format!("http://{FEED_HOST}:8080{IPS}")).with_timeout(t);
    let e = b.puller.pull(&refused).await.expect_err("refused");
    assert!(
        matches!(&e, PullError::Connect { reason, .. } if reason == "connection refused"),
        "{e:?}"
    );

    // A name that is no outside host's: no connection, no DNS.
    let unknown = PullRequest::new("http://elsewhere.example.test/x").with_timeout(t);
    let e = b.puller.pull(&unknown).await.expect_err("unknown host");
    assert!(
        matches!(e, PullError::UnknownHost { ref host, .. } if host == "elsewhere.example.test"),
        "{e:?}"
    );

    // A header from a secret cannot exist in a scenario.
    let secret = PullRequest::new(url("http", FEED_HOST, IPS)).with_header(PullHeader {
        name: "Authorization".into(),
        value: policylab_harness::puller::HeaderValue::Reference(
            "secretKeyRef globalthreatfeed-x/token".into(),
        ),
    });
    let e = b.puller.pull(&secret).await.expect_err("reference");
    assert!(matches!(e, PullError::HeaderReference { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("secretKeyRef globalthreatfeed-x/token"),
        "{e}"
    );

    // Slower than the pull timeout: connected, but no response in time.
    b.server.set_delay(Duration::from_secs(3));
    let start = Instant::now();
    let slow = PullRequest::new(url("http", FEED_HOST, IPS)).with_timeout(t);
    let e = b.puller.pull(&slow).await.expect_err("slow");
    let took = start.elapsed();
    assert_eq!(
        e,
        PullError::Timeout {
            url: "http://installer.calicocloud.io/feeds/v1/ips".into(),
            timeout: t
        }
    );
    assert!(
        took >= t && took < t + Duration::from_secs(2),
        "took {took:?}"
    );
    b.server.set_delay(Duration::ZERO);

    // Host down (`fail:`): connections time out instead of being refused.
    b.server.fail().await.expect("fail");
    b.server.fail().await.expect("fail is idempotent");
    let start = Instant::now();
    let down = PullRequest::new(url("http", FEED_HOST, IPS)).with_timeout(t);
    let e = b.puller.pull(&down).await.expect_err("down");
    let took = start.elapsed();
    assert_eq!(
        e,
        PullError::ConnectTimeout {
            url: "http://installer.calicocloud.io/feeds/v1/ips".into(),
            timeout: t
        }
    );
    assert!(took >= t, "took {took:?}");
    assert_eq!(
        e.to_string(),
        "GET http://installer.calicocloud.io/feeds/v1/ips: no answer from the server within 800ms (connection timed out)"
    );
    // Also the port nothing listens on times out now: the host is silent, not refusing.
    let e = b.puller.pull(&refused).await.expect_err("down, other port");
    assert!(matches!(e, PullError::ConnectTimeout { .. }), "{e:?}");

    // `recover:` answers again.
    b.server.recover().await.expect("recover");
    b.server.recover().await.expect("recover is idempotent");
    let r = b.puller.pull(&down).await.expect("after recover");
    assert_eq!(r.body, "1.2.3.4\n5.6.7.0/24\n");

    b.cluster.teardown().expect("teardown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_certificates_are_refused() {
    if !kernel_ready("untrusted_certificates_are_refused") {
        return;
    }
    let b = bench("feedtls").await;
    // A server whose certificate comes from a CA the puller does not trust.
    let rogue_ns = b.cluster.outside_host("rogue").expect("rogue").clone();
    let other_ca = ScenarioCa::generate("other").expect("ca");
    let addrs = [ip("203.0.113.201")];
    let id = other_ca
        .issue(&[ROGUE_HOST.to_string()], &addrs)
        .expect("cert");
    let files = BTreeMap::from([(IPS.to_string(), b"6.6.6.6\n".to_vec())]);
    let rogue = FeedServer::start(
        &rogue_ns,
        files,
        FeedServerOptions::http(&addrs).with_https(id),
    )
    .await
    .expect("rogue server");
    let req = PullRequest::new(url("https", ROGUE_HOST, IPS)).with_timeout(Duration::from_secs(2));
    let e = b.puller.pull(&req).await.expect_err("untrusted");
    assert_eq!(
        e,
        PullError::Tls {
            url: "https://rogue.example.test/feeds/v1/ips".into(),
            reason: "the server's certificate is not signed by the scenario CA (unknown issuer)"
                .into()
        }
    );
    assert!(rogue.requests().is_empty(), "no request was sent");
    // Plain HTTP to the same host works: the refusal is about trust only.
    let plain = PullRequest::new(url("http", ROGUE_HOST, IPS));
    assert_eq!(b.puller.pull(&plain).await.expect("http").body, "6.6.6.6\n");

    // The scenario CA's certificate for the feed host, reached under another name the
    // puller resolves to it: not valid for that name.
    let wrong_name = Puller::new(b.cluster.fabric())
        .trust(
            ScenarioCa::generate("unused")
                .expect("ca")
                .cert_der()
                .clone(),
        )
        .resolve(FEED_HOST, &[ip("203.0.113.200")]);
    let e = wrong_name
        .pull(&PullRequest::new(url("https", FEED_HOST, IPS)))
        .await
        .expect_err("other root");
    assert!(matches!(e, PullError::Tls { .. }), "{e:?}");
    let misnamed = b
        .puller
        .clone()
        .resolve("alias.example.test", &[ip("203.0.113.200")]);
    let e = misnamed
        .pull(&PullRequest::new(url("https", "alias.example.test", IPS)))
        .await
        .expect_err("wrong name");
    assert_eq!(
        e,
        PullError::Tls {
            url: "https://alias.example.test/feeds/v1/ips".into(),
            reason: "the server's certificate is not valid for this host name".into()
        }
    );
    drop(rogue);
    b.cluster.teardown().expect("teardown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_a_100k_line_feed() {
    if !kernel_ready("pulls_a_100k_line_feed") {
        return;
    }
    let b = bench("feedbig").await;
    let mut body = String::new();
    for i in 0..100_000u32 {
        let [_, x, y, z] = i.to_be_bytes();
        body.push_str(&format!("10.{x}.{y}.{z}\n"));
    }
    b.server.serve("/big", body.clone());
    for scheme in ["http", "https"] {
        let req =
            PullRequest::new(url(scheme, FEED_HOST, "/big")).with_timeout(Duration::from_secs(10));
        let start = Instant::now();
        let r = b.puller.pull(&req).await.expect("big pull");
        let took = start.elapsed();
        assert_eq!(r.body.len(), body.len());
        assert_eq!(r.body.lines().count(), 100_000);
        assert_eq!(r.body, body);
        eprintln!(
            "100,000-line feed ({} bytes) over {scheme}: {took:?}",
            body.len()
        );
    }
    b.cluster.teardown().expect("teardown");
}
