//! Embedding throughput on the fixed 2,000-sequence set (`benches/data/embed_2000.fasta`, made
//! by `make_embed_set.py`) with the default model: the packed CPU encoder against candle's
//! padded path. The PyTorch peer runs the same set with `embed_pytorch.py` (see BENCHMARKS.md).

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use r2dl::model::{Engine, InvalidResidue, Theta};
use r2dl::runtime::{ModelSpec, run_on_compute_pool, shared_model};

fn sequences() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/data/embed_2000.fasta");
    let text = std::fs::read_to_string(path).expect("benches/data/embed_2000.fasta");
    text.split('>')
        .skip(1)
        .map(|record| record.lines().skip(1).collect::<String>())
        .collect()
}

fn embed(c: &mut Criterion) {
    let model = shared_model(&ModelSpec::default()).expect("the default model");
    let candle = model
        .with_theta(&Theta::one_hot(model.english_tokens()))
        .expect("Θ")
        .with_engine(Engine::Candle);
    let sequences = sequences();
    let mut group = c.benchmark_group("embed_2000");
    group.throughput(Throughput::Elements(sequences.len() as u64));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20));
    for (name, model) in [("packed_cpu", &*model), ("candle_cpu", &candle)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                run_on_compute_pool(|| model.embed(sequences.iter().map(|s| Some(s.as_str())), InvalidResidue::Error))
                    .expect("embeds")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, embed);
criterion_main!(benches);
