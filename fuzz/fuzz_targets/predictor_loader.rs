//! The predictor loader on any `manifest.json` and `predictor.safetensors`: an error, never a
//! panic or an abort. The input is the manifest's length (2 bytes, little-endian), the manifest,
//! then the weights.
#![no_main]

use libfuzzer_sys::fuzz_target;
use r2dl::predictor::Predictor;

fuzz_target!(|input: &[u8]| {
    let Some((length, rest)) = input.split_first_chunk::<2>() else {
        return;
    };
    let (manifest, weights) = rest.split_at(usize::from(u16::from_le_bytes(*length)).min(rest.len()));
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(dir.path().join("manifest.json"), manifest).expect("written");
    std::fs::write(dir.path().join("predictor.safetensors"), weights).expect("written");
    let _ = Predictor::load(dir.path());
});
