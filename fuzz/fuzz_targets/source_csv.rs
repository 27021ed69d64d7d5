//! The CSV source and the Workday mapping behind it, as `import` reads an export: any
//! bytes give rows, rejected rows (with a row number and reason) or one clear error,
//! never a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use scimload::import::ingest::map_batch;
use scimload::mapping::{presets, Mapping, MappingSpec};
use scimload::source::{CsvSource, RecordSource};

/// The preset, parsed once (a TOML parse per input would be most of the time).
fn spec() -> &'static MappingSpec {
    static SPEC: OnceLock<MappingSpec> = OnceLock::new();
    SPEC.get_or_init(|| presets::load("workday").unwrap())
}

fuzz_target!(|data: &[u8]| {
    let input = || Box::new(std::io::Cursor::new(data.to_vec()));
    let Ok(mut src) = CsvSource::new(input(), b',', "fuzz.csv".into()) else {
        return;
    };
    // An export without the preset's required columns is refused before any row.
    let Ok(mapping) = Mapping::compile(spec(), src.columns(), false) else {
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
