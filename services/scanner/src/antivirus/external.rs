//! A generic external check, as Proxmox Mail Gateway's custom check: a program given
//! the message on standard input, answering one line on standard output: `OK`,
//! `VIRUS <name>` or `SCORE <points>`. It is killed when the caller's time runs out.

use std::process::Stdio;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{EngineError, Verdict};

#[derive(Debug, Clone, PartialEq)]
pub struct External {
    program: String,
    args: Vec<String>,
}

impl External {
    pub fn new(command: &[String]) -> Result<External, String> {
        let (program, args) = command.split_first().ok_or("an empty command")?;
        if program.is_empty() {
            return Err("an empty program name".into());
        }
        Ok(External { program: program.clone(), args: args.to_vec() })
    }

    pub async fn scan(&self, data: &[u8]) -> Result<Verdict, EngineError> {
        let mut child = tokio::process::Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            // A program that answers without reading everything closes its input: fine.
            let _ = stdin.write_all(data).await;
        }
        let mut out = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            stdout.take(4096).read_to_end(&mut out).await?;
        }
        let status = child.wait().await?;
        let answer = String::from_utf8_lossy(&out);
        let line = answer.lines().next().unwrap_or("").trim();
        parse_answer(line).ok_or_else(|| EngineError::Protocol(format!("{} answered {line:?} ({status})", self.program)))
    }
}

fn parse_answer(line: &str) -> Option<Verdict> {
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    match word.to_ascii_uppercase().as_str() {
        "OK" => Some(Verdict::Clean),
        "VIRUS" if !rest.trim().is_empty() => Some(Verdict::Found(rest.trim().to_string())),
        "SCORE" => rest.trim().parse::<f64>().ok().filter(|s| s.is_finite()).map(Verdict::Score),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        assert!(matches!(parse_answer("OK"), Some(Verdict::Clean)));
        assert!(matches!(parse_answer("VIRUS Win.Test.X"), Some(Verdict::Found(n)) if n == "Win.Test.X"));
        assert!(matches!(parse_answer("SCORE 3.5"), Some(Verdict::Score(s)) if s == 3.5));
        assert!(parse_answer("VIRUS").is_none());
        assert!(parse_answer("SCORE NaN").is_none());
        assert!(parse_answer("maybe").is_none());
    }
}
