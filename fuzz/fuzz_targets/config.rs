//! The configuration parser: any text as the configuration file, loaded
//! and compiled as `serve` does. Never a panic: a bad file is an error that
//! names its field.
#![no_main]

use std::sync::OnceLock;

use dispatch_authz::config::{Overrides, Settings};
use libfuzzer_sys::fuzz_target;

fn dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap())
}

fuzz_target!(|data: &[u8]| {
    let file = dir().path().join("dispatch-authz.toml");
    std::fs::write(&file, data).unwrap();
    if let Ok(settings) = Settings::load(Some(&file), &Overrides::default()) {
        if let Err(e) = settings.compile() {
            assert!(!e.to_string().is_empty());
        }
    }
});
