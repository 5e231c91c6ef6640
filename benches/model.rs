//! Verdicts per second of the reference model (`evaluate_fast`) at 100 and 1,000
//! policies. Worlds are generated: 60 pods in 3 namespaces on 2 nodes, policies spread
//! over 4 tiers (GNPs and NPs with selectors, nets, ports and a network set), flows
//! pod→pod, pod→outside and outside→pod.

use std::fmt::Write;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use policylab::model::{evaluate, evaluate_fast, Flow, FlowSource, Proto};
use policylab::resolve::World;

#[path = "support/synthetic.rs"]
#[allow(dead_code)] // the compiler benchmarks use `world`; this one its YAML loader
mod synthetic;

const PODS: usize = 60;

fn yaml(policies: usize) -> String {
    let mut s = String::new();
    for ns in ["a", "b", "c"] {
        let _ = write!(
            s,
            "---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}, labels: {{team: {ns}}}}}\n"
        );
    }
    for i in 0..PODS {
        let ns = ["a", "b", "c"][i % 3];
        let node = if i % 2 == 0 { "node1" } else { "node2" };
        let _ = write!(
            s,
            "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p{i}\n  namespace: {ns}\n  labels: {{app: app{}, tier: t{}}}\n  annotations:\n    cni.projectcalico.org/ipAddrs: '[\"10.244.{}.{}\"]'\nspec:\n  nodeName: {node}\n  containers:\n    - name: c\n      image: x\n      ports: [{{name: http, containerPort: 8080, protocol: TCP}}]\n",
            i % 10,
            i % 3,
            i / 200,
            i % 200 + 1
        );
    }
    s += "---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: bad, labels: {deny: 'yes'}}\nspec: {nets: [192.0.2.0/24, 203.0.113.0/24]}\n";
    for t in 0..4 {
        let _ = write!(
            s,
            "---\napiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {{name: tier{t}}}\nspec: {{order: {}, defaultAction: Pass}}\n",
            (t + 1) * 100
        );
    }
    for p in 0..policies {
        let tier = p % 4;
        let app = p % 10;
        if p % 2 == 0 {
            let _ = write!(
                s,
                "---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: gnp{p}}}\nspec:\n  tier: tier{tier}\n  order: {p}\n  selector: app == 'app{app}'\n  types: [Ingress, Egress]\n  ingress:\n    - {{action: Deny, source: {{selector: deny == 'yes'}}}}\n    - {{action: Allow, protocol: TCP, source: {{selector: app == 'app{}'}}, destination: {{ports: [http, 9000]}}}}\n    - {{action: Pass, source: {{nets: [10.244.0.0/16]}}}}\n  egress:\n    - {{action: Deny, destination: {{selector: deny == 'yes'}}}}\n    - {{action: Pass}}\n",
                (app + 1) % 10
            );
        } else {
            let ns = ["a", "b", "c"][p % 3];
            let _ = write!(
                s,
                "---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {{name: np{p}, namespace: {ns}}}\nspec:\n  tier: tier{tier}\n  selector: tier == 't{}'\n  ingress:\n    - {{action: Allow, protocol: TCP, source: {{namespaceSelector: team == 'b'}}, destination: {{ports: [8080]}}}}\n    - {{action: Pass, source: {{notSelector: app == 'app3'}}}}\n",
                p % 3
            );
        }
    }
    s
}

fn world(policies: usize) -> World {
    synthetic::world_of_yaml(&yaml(policies))
}

fn flows(w: &World) -> Vec<Flow> {
    let mut out = Vec::new();
    let n = w.endpoints.len();
    for i in 0..n {
        let j = (i * 7 + 3) % n;
        out.push(Flow::new(
            FlowSource::Endpoint(i),
            w.endpoints[j].ips[0],
            Proto::Tcp,
            8080,
        ));
        out.push(Flow::new(
            FlowSource::Endpoint(i),
            w.endpoints[j].ips[0],
            Proto::Tcp,
            9000,
        ));
        out.push(Flow::new(
            FlowSource::Endpoint(i),
            "192.0.2.9".parse().unwrap(),
            Proto::Tcp,
            443,
        ));
        out.push(Flow::new(
            FlowSource::Ip("198.51.100.7".parse().unwrap()),
            w.endpoints[j].ips[0],
            Proto::Tcp,
            8080,
        ));
    }
    out
}

fn bench(c: &mut Criterion) {
    for policies in [100, 1000] {
        let w = world(policies);
        let fl = flows(&w);
        let mut g = c.benchmark_group(format!("model/{policies}-policies"));
        g.throughput(Throughput::Elements(fl.len() as u64));
        g.bench_function("evaluate_fast", |b| {
            b.iter(|| {
                for f in &fl {
                    black_box(evaluate_fast(&w, black_box(f)));
                }
            })
        });
        g.bench_function("evaluate (full trace)", |b| {
            b.iter(|| {
                for f in &fl {
                    black_box(evaluate(&w, black_box(f)));
                }
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
