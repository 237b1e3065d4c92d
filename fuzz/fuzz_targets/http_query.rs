#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| torsion_fuzz::targets::http_query::run(data));
