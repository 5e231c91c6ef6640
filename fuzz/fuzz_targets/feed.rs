//! cargo-fuzz target: policylab::fuzz::feed (see fuzz/README.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| policylab::fuzz::feed(data));
