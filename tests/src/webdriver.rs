//! Headless Chromium driven over WebDriver (chromedriver, installed by
//! scripts/setup.sh), with this crate's HTTP client: enough to fill forms, click,
//! read the page and take screenshots.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::http::request;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Chromium {
    driver: Child,
    addr: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// `None` (with a message) when chromedriver is not installed.
    pub fn start() -> Option<Chromium> {
        let Ok(path) = which("chromedriver") else {
            eprintln!("skipped: chromedriver is not installed (scripts/setup.sh installs it)");
            return None;
        };
        let port = crate::free_port();
        let driver = Command::new(path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let addr = format!("127.0.0.1:{port}");
        let up = crate::wait_until(Duration::from_secs(20), || std::net::TcpStream::connect(&addr).is_ok());
        assert!(up, "chromedriver did not listen on {addr}");
        let profile = tempfile::tempdir().expect("profile dir");
        let mut chromium = Chromium { driver, addr, session: String::new(), _profile: profile };
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1280,900".into(),
            format!("--user-data-dir={}", chromium._profile.path().display()),
        ];
        let binary = which("chromium").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let caps =
            json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {"binary": binary, "args": args}}}});
        let created = chromium.call("POST", "/session", Some(caps));
        chromium.session = created["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {created}")).to_string();
        Some(chromium)
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let headers = [("Content-Type".to_string(), "application/json".to_string())];
        let response = request(&self.addr, method, path, &headers, &body);
        let value: Value = serde_json::from_str(&response.body).unwrap_or_else(|e| panic!("webdriver {path}: {e}: {}", response.body));
        assert!(response.status == 200, "webdriver {method} {path}: {}", response.body);
        value["value"].clone()
    }

    fn at(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", &self.at("/url"), Some(json!({ "url": url })));
    }

    fn element(&self, css: &str) -> String {
        let found = self.call("POST", &self.at("/element"), Some(json!({"using": "css selector", "value": css})));
        found[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {css}: {found}")).to_string()
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.call("POST", &self.at(&format!("/element/{id}/value")), Some(json!({ "text": text })));
    }

    pub fn click(&self, css: &str) {
        let id = self.element(css);
        self.call("POST", &self.at(&format!("/element/{id}/click")), Some(json!({})));
    }

    pub fn source(&self) -> String {
        self.call("GET", &self.at("/source"), None).as_str().unwrap_or_default().to_string()
    }

    /// The page source once it contains `needle` (navigation after a click is not
    /// waited for by WebDriver), or the last source after `timeout`.
    pub fn source_with(&self, needle: &str, timeout: Duration) -> String {
        let mut source = String::new();
        crate::wait_until(timeout, || {
            source = self.source();
            source.contains(needle)
        });
        source
    }

    /// Resizes the window (the viewport a reader has).
    pub fn window(&self, width: u32, height: u32) {
        self.call("POST", &self.at("/window/rect"), Some(json!({ "width": width, "height": height })));
    }

    /// Runs a script in the page and gives what it returns.
    pub fn execute(&self, script: &str) -> Value {
        self.call("POST", &self.at("/execute/sync"), Some(json!({ "script": script, "args": [] })))
    }

    pub fn screenshot(&self, path: &Path) {
        let encoded = self.call("GET", &self.at("/screenshot"), None);
        let png = base64_decode(encoded.as_str().unwrap_or_default());
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("artifact dir");
        }
        std::fs::write(path, png).expect("write screenshot");
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = request(&self.addr, "DELETE", &format!("/session/{}", self.session), &[], "");
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn which(name: &str) -> Result<String, ()> {
    let out = Command::new("sh").args(["-c", &format!("command -v {name}")]).output().map_err(|_| ())?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() && !path.is_empty() { Ok(path) } else { Err(()) }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let digits: Vec<u8> = text.bytes().filter_map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &d)| acc | (u32::from(d) << (18 - 6 * i)));
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len().saturating_sub(1)]);
    }
    out
}
