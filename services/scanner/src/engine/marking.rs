//! The X-Spam-* headers the scanner asks for (applied by `rempart_model::Edits`).

use rempart_model::{Action, Verdict};

/// The X-Spam-* header fields (each with its CRLF) for a message the policy marks
/// rather than refuses.
pub fn spam_headers(verdict: &Verdict, required: Option<f64>) -> Vec<String> {
    let tests: Vec<&str> = verdict.symbols.iter().map(|s| s.name.as_str()).collect();
    let flag = if verdict.action >= Action::AddHeader { "Yes" } else { "No" };
    let required = required.map_or(String::new(), |r| format!(" required={r:.1}"));
    let listed: Vec<String> = verdict.symbols.iter().map(|s| format!("{}({:.2})", s.name, s.score)).collect();
    vec![
        format!(
            "X-Spam-Status: {flag}, score={:.2}{required} tests={}\r\n",
            verdict.score,
            if tests.is_empty() { "none".to_string() } else { tests.join(",") }
        ),
        format!("X-Spam-Score: {:.2}\r\n", verdict.score),
        format!("X-Spam-Symbols: {}\r\n", if listed.is_empty() { "none".to_string() } else { listed.join(", ") }),
    ]
}
