//! The PROXY protocol header (v1 and v2) as a load balancer, or anyone, sends it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let mut reader = tokio::io::BufReader::new(data);
    let _ = runtime.block_on(rempart_edge::proxy::read_header(&mut reader));
});
