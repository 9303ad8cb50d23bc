//! SMTP replies. Every reply to a command carries an RFC 3463 enhanced status code;
//! the greeting, the EHLO keyword list and `354` do not take one (RFC 2034).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub status: &'static str,
    pub text: String,
}

impl Reply {
    pub fn new(code: u16, status: &'static str, text: impl Into<String>) -> Self {
        Self { code, status, text: text.into() }
    }

    pub fn is_error(&self) -> bool {
        self.code >= 400
    }

    pub fn syntax(usage: &str) -> Self {
        Self::new(501, "5.5.4", format!("Syntax: {usage}"))
    }

    pub fn bad_sequence(text: &str) -> Self {
        Self::new(503, "5.5.1", text)
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.status.is_empty() {
            write!(f, "{} {}\r\n", self.code, self.text)
        } else {
            write!(f, "{} {} {}\r\n", self.code, self.status, self.text)
        }
    }
}
