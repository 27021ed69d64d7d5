//! The NDJSON and JSON-array sources and the generic mapping behind them: any bytes give
//! rows, rejected rows (wrong types, duplicate keys) or one clear error, never a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use scimload::import::ingest::map_batch;
use scimload::mapping::{presets, Mapping, MappingSpec};
use scimload::source::{JsonArraySource, NdjsonSource, RecordSource};

/// The preset, parsed once (a TOML parse per input would be most of the time).
fn spec() -> &'static MappingSpec {
    static SPEC: OnceLock<MappingSpec> = OnceLock::new();
    SPEC.get_or_init(|| presets::load("generic").unwrap())
}

fuzz_target!(|data: &[u8]| {
    let input = || Box::new(std::io::Cursor::new(data.to_vec()));
    let array = data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let src: Result<Box<dyn RecordSource>, _> = if array {
        JsonArraySource::new(input(), "fuzz.json".into()).map(|s| Box::new(s) as _)
    } else {
        NdjsonSource::new(input(), "fuzz.ndjson".into()).map(|s| Box::new(s) as _)
    };
    let Ok(mut src) = src else {
        return;
    };
    let Ok(mapping) = Mapping::compile(spec(), src.columns(), true) else {
        return;
    };
    let mut batch = src.new_batch();
    while let Ok(true) = src.fill(&mut batch, 64) {
        // Every row accounted for, once, in row order: mapped, rejected by the mapping,
        // or rejected by the reader.
        let out = map_batch(&mapping, &batch);
        assert_eq!(out.len(), batch.rows.len() + batch.rejects.len());
        assert!(
            out.windows(2).all(|w| w[0].row() < w[1].row()),
            "rows in order, once each"
        );
    }
});
