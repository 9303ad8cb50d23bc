//! The DATA body as a client sends it, cut into reads anywhere: never a panic, the end
//! found where it is, the same body however the reads are cut, and never more kept
//! than the size limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rempart_smtp::DataBody;

fn feed(data: &[u8], cut: usize, max: usize) -> (Vec<u8>, bool, Option<usize>) {
    let mut body = DataBody::new(max).with_line_limit(Some(1000));
    let mut used = 0;
    for chunk in data.chunks(cut.max(1)) {
        if let Some(n) = body.push(chunk) {
            assert!(n <= chunk.len());
            assert!(body.message.len() <= max);
            return (body.message, body.bare_newline, Some(used + n));
        }
        used += chunk.len();
    }
    assert!(body.message.len() <= max);
    (body.message, body.bare_newline, None)
}

fuzz_target!(|input: &[u8]| {
    let Some((&cut, data)) = input.split_first() else { return };
    let whole = feed(data, data.len(), 4096);
    let cut = feed(data, usize::from(cut % 17) + 1, 4096);
    assert_eq!(whole, cut);
});
