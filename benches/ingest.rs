//! HR export → SCIM JSON on one core, against the plain `csv` crate reading the same
//! bytes as the reference. Targets: CSV→SCIM ≥ 1,000,000 rows/s and NDJSON→SCIM ≥ 700,000
//! rows/s on one core (parsing included, no I/O). The two-core figure is the binary's
//! own pipeline (`import --dry-run` pinned to one core, then two), in
//! scripts/ingest-bench.sh.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use scimload::gen::{Format, GenConfig, Generator, Shape};
use scimload::import::ingest::map_batch;
use scimload::mapping::{presets, Mapping, Record};
use scimload::source::{CsvSource, NdjsonSource, RecordSource, Records};

// The allocator the binary uses, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROWS: u64 = 100_000;

fn export(shape: Shape, format: Format) -> Vec<u8> {
    let mut out = Vec::new();
    Generator::new(GenConfig {
        rows: ROWS,
        shape,
        format,
        seed: 42,
        dirty: 0.0,
    })
    .write_all(&mut out)
    .unwrap();
    out
}

/// Parse + map every row on the calling thread.
fn csv_to_scim(data: &'static [u8], mapping: &Mapping) -> usize {
    let mut src = CsvSource::new(Box::new(data), b',', "bench.csv".into()).unwrap();
    let mut b = src.new_batch();
    let mut bytes = 0;
    while src.fill(&mut b, 8192).unwrap() {
        let Records::Csv(recs) = &b.records else {
            unreachable!()
        };
        for (rec, row) in recs.iter().zip(&b.rows) {
            bytes += mapping
                .map(&Record::Csv(rec), *row)
                .map(|u| u.body().len())
                .unwrap_or(0);
        }
    }
    bytes
}

fn ndjson_to_scim(data: &'static [u8], mapping: &Mapping) -> usize {
    let mut src = NdjsonSource::new(Box::new(data), "bench.ndjson".into()).unwrap();
    let mut b = src.new_batch();
    let mut n = 0;
    while src.fill(&mut b, 8192).unwrap() {
        // map_batch parallelises; a one-thread pool keeps this a one-core figure.
        n += map_batch(mapping, &b).len();
    }
    n
}

fn benches(c: &mut Criterion) {
    let csv: &'static [u8] = Box::leak(export(Shape::Workday, Format::Csv).into_boxed_slice());
    let nd: &'static [u8] = Box::leak(export(Shape::Generic, Format::Ndjson).into_boxed_slice());
    let csv_cols = CsvSource::new(Box::new(csv), b',', "x".into())
        .unwrap()
        .columns()
        .to_vec();
    let nd_cols = NdjsonSource::new(Box::new(nd), "x".into())
        .unwrap()
        .columns()
        .to_vec();
    let wd = Mapping::compile(&presets::load("workday").unwrap(), &csv_cols, false).unwrap();
    let gn = Mapping::compile(&presets::load("generic").unwrap(), &nd_cols, true).unwrap();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();

    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(ROWS));
    g.sample_size(20);
    g.bench_function("reference_csv_byte_records", |b| {
        b.iter(|| {
            let mut r = csv::Reader::from_reader(black_box(csv));
            let mut rec = csv::ByteRecord::new();
            let mut n = 0;
            while r.read_byte_record(&mut rec).unwrap() {
                n += rec.len();
            }
            n
        })
    });
    // The source alone (read, split, UTF-8 check, batch), against the reference above.
    g.bench_function("csv_source_only", |b| {
        b.iter(|| {
            let mut src =
                CsvSource::new(Box::new(black_box(csv)), b',', "bench.csv".into()).unwrap();
            let mut bt = src.new_batch();
            let mut n = 0;
            while src.fill(&mut bt, 8192).unwrap() {
                n += bt.rows.len();
            }
            n
        })
    });
    g.bench_function("csv_to_scim_1_core", |b| {
        b.iter(|| csv_to_scim(black_box(csv), &wd))
    });
    g.bench_function("ndjson_to_scim_1_core", |b| {
        b.iter(|| one.install(|| ndjson_to_scim(black_box(nd), &gn)))
    });
    g.finish();
}

criterion_group!(ingest, benches);
criterion_main!(ingest);
