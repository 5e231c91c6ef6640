//! cargo-fuzz target: policylab::fuzz::manifest (see fuzz/README.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| policylab::fuzz::manifest(data));
