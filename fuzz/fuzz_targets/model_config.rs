//! The model config loader on any `config.json`: an error naming the field, never a panic, an
//! abort or a huge allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use r2dl::model::BertConfig;

fuzz_target!(|input: &[u8]| {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("config.json");
    std::fs::write(&path, input).expect("written");
    let _ = BertConfig::from_file(&path);
});
