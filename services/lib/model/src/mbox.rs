//! Splitting an mbox file into messages (mboxo/mboxrd: a message starts at a line
//! beginning with "From " at the start of the file or after an empty line; ">From "
//! quoting is undone by one level). Archives are often quoted carelessly, so a
//! separator must also carry the time of its date ("hh:mm").

/// The messages in `mbox`, each without its "From " separator line.
pub fn split(mbox: &[u8]) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    let mut previous_blank = true;
    for line in mbox.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"From ") && previous_blank && has_time(line) {
            if let Some(mut done) = current.take() {
                // The empty line before a separator belongs to the format, not the message.
                if done.ends_with(b"\r\n\r\n") {
                    done.truncate(done.len() - 2);
                } else if done.ends_with(b"\n\n") {
                    done.truncate(done.len() - 1);
                }
                messages.push(done);
            }
            current = Some(Vec::new());
            previous_blank = false;
            continue;
        }
        previous_blank = line == b"\n" || line == b"\r\n";
        let Some(message) = current.as_mut() else { continue };
        // mboxrd: one '>' less on ">From ", ">>From ", …
        let quoted = line.iter().position(|&b| b != b'>').is_some_and(|n| n > 0 && line[n..].starts_with(b"From "));
        message.extend_from_slice(if quoted { &line[1..] } else { line });
    }
    messages.extend(current);
    messages
}

/// "hh:mm" somewhere in the line, as in "From sender Mon Nov 23 10:00:00 2026".
fn has_time(line: &[u8]) -> bool {
    line.windows(5)
        .any(|w| w[0].is_ascii_digit() && w[1].is_ascii_digit() && w[2] == b':' && w[3].is_ascii_digit() && w[4].is_ascii_digit())
}

#[cfg(test)]
mod tests {
    #[test]
    fn splits_and_unquotes() {
        let mbox = b"From a@b Mon Nov 23 10:00:00 2026\nSubject: one\n\nHello\n>From the start\n\nFrom c@d Mon Nov 23 11:00:00 2026\nSubject: two\n\nFrom here, not a separator\nBye\n";
        let messages = super::split(mbox);
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0], b"Subject: one\n\nHello\nFrom the start\n");
        // "From here" after a blank line, but with no date: not a separator.
        assert!(messages[1].ends_with(b"From here, not a separator\nBye\n"), "{:?}", String::from_utf8_lossy(&messages[1]));
        assert!(super::split(b"").is_empty());
        assert!(super::split(b"no separator at all\n").is_empty());
    }
}
