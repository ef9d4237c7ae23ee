//! FASTA → Arrow throughput of [`FastaReader`] on an in-memory protein FASTA, next to the floor
//! of merely finding every line end in the same bytes (`memchr`), measured in the same run.
//!
//! `cargo bench --bench fasta_scan`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use r2dl::fasta::{FastaReader, ID, SEQUENCE};

/// About `target_bytes` of UniProt-like records: 60-column lines, lengths 50..1050.
fn synthetic_fasta(target_bytes: usize) -> Vec<u8> {
    const RESIDUES: &[u8] = b"ACDEFGHIKLMNPQRSTVWY";
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out = Vec::with_capacity(target_bytes + 2048);
    let mut i = 0;
    while out.len() < target_bytes {
        out.extend_from_slice(format!(">sp|Q{i:06}|PROT_SYNTH Synthetic protein {i} OS=Nowhere OX=0\n").as_bytes());
        let len = 50 + (next() % 1000) as usize;
        for pos in 0..len {
            out.push(RESIDUES[(next() % 20) as usize]);
            if pos % 60 == 59 || pos == len - 1 {
                out.push(b'\n');
            }
        }
        i += 1;
    }
    out
}

fn fasta_scan(c: &mut Criterion) {
    let data = synthetic_fasta(64 << 20);
    let mut group = c.benchmark_group("fasta_scan");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.sample_size(10);

    group.bench_function("floor_memchr_lines", |b| {
        b.iter(|| black_box(memchr::memchr_iter(b'\n', black_box(&data)).count()))
    });
    group.bench_function("all_columns", |b| {
        b.iter(|| {
            let reader = FastaReader::new(black_box(&data[..]), "bench");
            black_box(reader.map(|b| b.expect("valid").num_rows()).sum::<usize>())
        })
    });
    group.bench_function("id_and_sequence", |b| {
        b.iter(|| {
            let reader = FastaReader::new(black_box(&data[..]), "bench").with_projection(vec![ID, SEQUENCE]);
            black_box(reader.map(|b| b.expect("valid").num_rows()).sum::<usize>())
        })
    });
    group.bench_function("count_only", |b| {
        b.iter(|| {
            let reader = FastaReader::new(black_box(&data[..]), "bench").with_projection(vec![]);
            black_box(reader.map(|b| b.expect("valid").num_rows()).sum::<usize>())
        })
    });
    group.finish();
}

criterion_group!(benches, fasta_scan);
criterion_main!(benches);
