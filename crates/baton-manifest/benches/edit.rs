//! `make bench`: one edit on a 1 MB Helm values file and on the nine-image overlay.
//! Prints median and p95 wall time per edit (parse, splice, verify) and, for the
//! large file, per `current_value`.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a panic is the failure report

use std::hint::black_box;
use std::time::{Duration, Instant};

use baton_manifest::{Edit, KustomizeImage, apply, current_value};

fn values_file(target_bytes: usize) -> String {
    let mut out =
        String::from("# generated values for the benchmark\nglobal:\n  registry: ghcr.io/acme\n");
    let mut i = 0;
    while out.len() < target_bytes {
        out.push_str(&format!(
            "service{i}:\n  # service {i}\n  image:\n    repository: ghcr.io/acme/service{i}\n    tag: v1.{i}.0\n  resources:\n    limits: {{cpu: 500m, memory: 256Mi}}\n  env:\n    - name: LOG_LEVEL\n      value: info\n"
        ));
        i += 1;
    }
    out.push_str("target:\n  image:\n    tag: v0.0.1\n");
    out
}

fn measure(name: &str, iterations: usize, mut f: impl FnMut()) {
    for _ in 0..3 {
        f();
    }
    let mut samples: Vec<Duration> = (0..iterations)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    samples.sort();
    let median = samples[samples.len() / 2];
    let p95 = samples[samples.len() * 95 / 100];
    println!("{name:<44} median {median:>10.3?}  p95 {p95:>10.3?}  ({iterations} runs)");
}

fn main() {
    let big = values_file(1 << 20);
    println!(
        "values file: {} bytes, {} lines",
        big.len(),
        big.lines().count()
    );
    let set = Edit::Set {
        path: "target.image.tag".into(),
        value: "v0.0.2".into(),
    };
    measure("1 MB values file: set target.image.tag", 30, || {
        black_box(apply("values.yaml", black_box(&big), &set).expect("edit"));
    });
    measure("1 MB values file: current_value", 30, || {
        black_box(current_value("values.yaml", black_box(&big), &set).expect("read"));
    });

    let overlay = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/overlay-prod.in.yaml"
    ))
    .expect("overlay");
    let tag = Edit::KustomizeImage(KustomizeImage {
        name: "cartservice".into(),
        new_tag: Some("v1.0.2".into()),
        ..KustomizeImage::default()
    });
    measure("nine-image overlay: kustomize newTag", 2000, || {
        black_box(apply("kustomization.yaml", black_box(&overlay), &tag).expect("edit"));
    });
    let digest = Edit::KustomizeImage(KustomizeImage {
        name: "frontend".into(),
        digest: Some(
            "sha256:9b2a5e7c1d0f3e4a6b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c".into(),
        ),
        ..KustomizeImage::default()
    });
    measure("nine-image overlay: digest (insert + remove)", 2000, || {
        black_box(apply("kustomization.yaml", black_box(&overlay), &digest).expect("edit"));
    });
}
