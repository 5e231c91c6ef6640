//! cargo-fuzz target: policylab::fuzz::selector (see fuzz/README.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| policylab::fuzz::selector(data));
