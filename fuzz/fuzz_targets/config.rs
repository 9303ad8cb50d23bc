//! The configuration file: any text gives a configuration or an error naming the
//! file and line, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let dir = std::env::temp_dir();
    if let Err(e) = rempart_model::Config::parse(text, "fuzz.toml", &dir) {
        assert!(e.to_string().contains("fuzz.toml"), "{e}");
    }
});
