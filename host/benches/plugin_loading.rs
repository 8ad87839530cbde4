//! Benchmark: discover, ABI-check and load every plugin bundled next to exo
//! (`target/release/plugins/`, assembled by `cargo xtask build --release`).
//!
//! A library loads once per process, so each sample is a fresh child process that runs the
//! loader once and reports its own time; the parent prints the median and the 90th percentile.
//! Target (design.md): ≤ 5 ms in release.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use exo::discovery::{DirOrigin, PluginDir};

const SAMPLES: usize = 50;
const CHILD: &str = "EXO_BENCH_PLUGIN_DIR";

fn main() {
    if let Some(dir) = std::env::var_os(CHILD) {
        let dirs = [PluginDir {
            path: PathBuf::from(dir),
            origin: DirOrigin::Bundled,
        }];
        let started = Instant::now();
        let catalog = exo::loader::load_all(&dirs);
        let elapsed = started.elapsed();
        assert!(catalog.refused.is_empty(), "a bundled plugin was refused");
        println!("{} {}", elapsed.as_nanos(), catalog.plugins.len());
        return;
    }
    let exe = std::env::current_exe().expect("the benchmark knows its path");
    let release = exe
        .ancestors()
        .nth(2)
        .expect("benches run from target/<profile>/deps");
    let dir = std::env::args()
        .nth(1)
        .filter(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .unwrap_or_else(|| release.join("plugins"));
    assert!(
        dir.is_dir(),
        "{} does not exist: run `cargo xtask build --release` first",
        dir.display()
    );
    let mut samples = Vec::with_capacity(SAMPLES);
    let mut plugins = 0;
    for _ in 0..SAMPLES {
        let output = Command::new(&exe)
            .env(CHILD, &dir)
            .output()
            .expect("run a sample");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8_lossy(&output.stdout);
        let mut fields = text.split_whitespace();
        samples.push(
            fields
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .expect("nanoseconds"),
        );
        plugins = fields.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    }
    samples.sort_unstable();
    let ms = |ns: u64| ns as f64 / 1e6;
    println!(
        "plugin loading: {plugins} plugins from {}: median {:.2} ms, p90 {:.2} ms, min {:.2} ms ({SAMPLES} processes)",
        dir.display(),
        ms(samples[SAMPLES / 2]),
        ms(samples[SAMPLES * 9 / 10]),
        ms(samples[0]),
    );
}
