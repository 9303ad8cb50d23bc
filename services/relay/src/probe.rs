//! `rempart probe`: one delivery acted out step by step — where the domain's mail goes
//! (its MX, or a customer domain's route), connect, banner, EHLO, STARTTLS, MAIL, RCPT
//! and, if asked, DATA with a test message — each reply with what it means and what to
//! do about it. Nothing is delivered unless DATA is asked for.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mail_auth::hickory_resolver::TokioResolver;
use rempart_model::{Config, Route};
use rempart_smtp::{Reply, Stream, dot_stuff};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::UnixTime;
use serde::Serialize;
use tokio::io::BufReader;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use rempart_smtp_client::conn::Conn;
use rempart_smtp_client::{mx, server_name, unlikely_address};

pub struct ProbeOptions {
    /// An address (its RCPT is asked) or a domain (postmaster@ it is asked).
    pub target: String,
    pub from: String,
    /// Send a test message after RCPT (it is delivered if accepted).
    pub data: bool,
    /// The port of outside MX hosts (customer routes have theirs).
    pub port: u16,
    pub timeout: Duration,
}

/// One step: what was sent, what came back, and what it means.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub step: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    pub reply: String,
    pub ok: bool,
    pub meaning: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
    pub millis: u64,
}

#[derive(Debug, Serialize)]
pub struct Probe {
    pub target: String,
    pub recipient: String,
    /// The recipient would be accepted (and the message, with DATA).
    pub accepted: bool,
    pub steps: Vec<Step>,
}

/// The same one-line advice for the same situation, wherever it appears.
fn step(step: &'static str, sent: Option<String>, reply: Result<&Reply, String>, started: Instant, context: Context) -> Step {
    let millis = started.elapsed().as_millis() as u64;
    match reply {
        Ok(reply) => {
            let (meaning, advice) = explain(context, reply);
            let ok = reply.is_positive() || (context == Context::Data && reply.code == 354);
            Step { step, sent, code: Some(reply.code), reply: reply.to_string(), ok, meaning, advice, millis }
        }
        Err(error) => Step { step, sent, code: None, reply: error.clone(), ok: false, meaning: error, advice: None, millis },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    Banner,
    Ehlo,
    StartTls,
    Mail,
    Rcpt,
    Data,
    Message,
}

/// What a reply means at this step, and what to do about it.
fn explain(context: Context, reply: &Reply) -> (String, Option<String>) {
    let text = reply.text.to_ascii_lowercase();
    let status = reply.status.as_ref();
    let said = |meaning: &str, advice: Option<&str>| (meaning.to_string(), advice.map(String::from));
    match (context, reply.code, status) {
        (Context::Banner, 220, _) => said("The server greets us: it is ready for mail.", None),
        (Context::Banner, 554, _) => said(
            "The server refuses this client before any mail: our address is blocked there.",
            Some("Check this gateway's IP on the public DNS blocklists and ask the server's postmaster to lift the block."),
        ),
        (Context::Banner, 421, _) => {
            said("The server is busy or limiting connections.", Some("Retry later; mail would be queued and retried."))
        }
        (Context::Ehlo, 250, _) => said("The server introduced itself and listed its extensions.", None),
        (Context::StartTls, 220, _) => said("The server agreed to encrypt the session (STARTTLS).", None),
        (Context::Mail, 250, _) => said("The sender is accepted.", None),
        (Context::Rcpt, 250 | 251, _) => said("The recipient is accepted: mail to this address would be taken.", None),
        (Context::Data, 354, _) => said("The server is ready for the message.", None),
        (Context::Message, 250, _) => said("The message was accepted: delivery now rests with the receiving server.", None),
        (_, _, "5.1.1") | (Context::Rcpt, 550 | 551 | 553, _)
            if text.contains("unknown") || text.contains("no such") || text.contains("does not exist") || status == "5.1.1" =>
        {
            said(
                "The mailbox does not exist on that server.",
                Some("Check the address's spelling; if it is right, the recipient's administrator must create the mailbox."),
            )
        }
        (_, _, "5.1.2" | "5.1.10") => {
            said("The domain does not exist or accepts no mail.", Some("Check the domain's spelling and its DNS (MX records)."))
        }
        (_, _, "5.2.2") | (_, 452, "4.2.2") => {
            said("The mailbox is full.", Some("The recipient must make room; the sender can only wait."))
        }
        (_, 552, _) | (_, _, "5.3.4") => {
            said("The message is too big for that server.", Some("Send a smaller message or share the file by link."))
        }
        (_, 450 | 451, _) if text.contains("grey") || text.contains("gray") || text.contains("try again") => said(
            "A temporary refusal, most often greylisting: the server wants the sender to retry.",
            Some("Nothing to do: a real mail server retries within minutes and then passes."),
        ),
        (_, _, s)
            if s.starts_with("5.7.")
                && (text.contains("spf") || text.contains("dmarc") || text.contains("dkim") || s == "5.7.26" || s == "5.7.23") =>
        {
            said(
                "Refused for failing sender authentication (SPF, DKIM or DMARC).",
                Some("Publish an SPF record that names this gateway, sign with DKIM, and check the sender domain's DMARC policy."),
            )
        }
        (Context::Rcpt, 550 | 554, s) if s == "5.7.1" && (text.contains("relay") || text.contains("not local")) => said(
            "The server does not take mail for this domain from us (relaying denied): it is not the domain's mail server, or wants authentication.",
            Some("Check that the MX (or the customer route) points at the right server, and that it accepts mail for the domain."),
        ),
        (_, 550 | 553 | 554, s) if s.starts_with("5.7.") => said(
            "Refused by the server's policy (a block list, a sender rule or content filtering).",
            Some("Read the server's text for the rule; if it names a block list, check this gateway's IP there."),
        ),
        (_, 421, _) => {
            said("The server is closing the session (busy, limiting, or shutting down).", Some("Retry later; queued mail is retried."))
        }
        (_, 400..=499, _) => said(
            "A temporary failure: a sending server keeps the mail and retries.",
            Some("If it lasts for hours, contact the receiving server's administrator."),
        ),
        (_, 500..=599, _) => said("A permanent refusal: the sender gets a bounce.", Some("Read the server's text: it should say why.")),
        (_, _, _) => said("An unexpected reply.", None),
    }
}

pub async fn probe(config: &Config, resolver: Option<&TokioResolver>, options: &ProbeOptions) -> Probe {
    let target = options.target.trim().trim_matches(['<', '>']).to_string();
    let (recipient, domain) = match target.rsplit_once('@') {
        Some((_, domain)) => (target.clone(), domain.to_ascii_lowercase()),
        None => (format!("postmaster@{target}"), target.to_ascii_lowercase()),
    };
    let mut steps = Vec::new();
    let accepted = run(config, resolver, options, &recipient, &domain, &mut steps).await;
    Probe { target, recipient, accepted, steps }
}

async fn run(
    config: &Config,
    resolver: Option<&TokioResolver>,
    options: &ProbeOptions,
    recipient: &str,
    domain: &str,
    steps: &mut Vec<Step>,
) -> bool {
    let started = Instant::now();
    let hosts = match config.domain(domain) {
        Some(customer) => {
            steps.push(Step {
                step: "route",
                sent: None,
                code: None,
                reply: format!("{domain} is a customer domain: its mail goes to its route {}:{}", customer.route.host, customer.route.port),
                ok: true,
                meaning: "This gateway delivers the domain's mail to the customer's own server.".into(),
                advice: None,
                millis: 0,
            });
            vec![customer.route.clone()]
        }
        None => match mx::hosts(resolver, domain, options.port).await {
            Ok(hosts) => {
                let names: Vec<String> = hosts.iter().map(|h| h.host.clone()).collect();
                steps.push(Step {
                    step: "mx",
                    sent: Some(format!("MX {domain}")),
                    code: None,
                    reply: names.join(", "),
                    ok: true,
                    meaning: format!("Mail for {domain} goes to these hosts, best first (the domain itself when it has no MX)."),
                    advice: None,
                    millis: started.elapsed().as_millis() as u64,
                });
                hosts
            }
            Err(reply) => {
                let advice = Some("Check the domain's spelling and its DNS: it needs MX records (or an address) for mail.".to_string());
                let failed = Step {
                    step: "mx",
                    sent: Some(format!("MX {domain}")),
                    code: None,
                    reply: reply.to_string(),
                    ok: false,
                    meaning: reply.text.clone(),
                    advice,
                    millis: started.elapsed().as_millis() as u64,
                };
                steps.push(failed);
                return false;
            }
        },
    };
    for host in hosts {
        let addresses = mx::addresses(resolver, &host.host).await;
        if addresses.is_empty() {
            steps.push(Step {
                step: "address",
                sent: Some(format!("A/AAAA {}", host.host)),
                code: None,
                reply: "no address".into(),
                ok: false,
                meaning: format!("{} has no IPv4 or IPv6 address.", host.host),
                advice: Some("Fix the host's A/AAAA records, or the MX that names it.".into()),
                millis: 0,
            });
            continue;
        }
        for ip in addresses {
            if let Some(accepted) = session(config, options, &host, ip, recipient, steps).await {
                return accepted;
            }
        }
    }
    false
}

/// One SMTP session with one address of a host. `None`: no session could be opened
/// (the next address or host is tried, as a sending server would).
async fn session(
    config: &Config,
    options: &ProbeOptions,
    host: &Route,
    ip: IpAddr,
    recipient: &str,
    steps: &mut Vec<Step>,
) -> Option<bool> {
    let started = Instant::now();
    let remote = match host.host.parse::<IpAddr>() {
        Ok(_) => format!("{ip}:{}", host.port),
        Err(_) => format!("{}[{ip}]:{}", host.host, host.port),
    };
    let tcp = match tokio::time::timeout(options.timeout, TcpStream::connect((ip, host.port))).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            let advice =
                "Nothing listens there, or a firewall refuses us: check that the server runs and that port is open to this gateway.";
            steps.push(Step {
                step: "connect",
                sent: Some(remote),
                code: None,
                reply: e.to_string(),
                ok: false,
                meaning: "The connection failed.".into(),
                advice: Some(advice.into()),
                millis: started.elapsed().as_millis() as u64,
            });
            return None;
        }
        Err(_) => {
            let advice = "A firewall drops the packets (many networks block outgoing port 25), or the host is down.";
            steps.push(Step {
                step: "connect",
                sent: Some(remote),
                code: None,
                reply: "timed out".into(),
                ok: false,
                meaning: "No answer to the connection.".into(),
                advice: Some(advice.into()),
                millis: started.elapsed().as_millis() as u64,
            });
            return None;
        }
    };
    steps.push(Step {
        step: "connect",
        sent: Some(remote),
        code: None,
        reply: "connected".into(),
        ok: true,
        meaning: "The server's port is open.".into(),
        advice: None,
        millis: started.elapsed().as_millis() as u64,
    });
    let mut conn = Conn { io: BufReader::new(Stream::Plain(tcp)), timeout: options.timeout };
    let banner = ask(&mut conn, "banner", None, Context::Banner, steps).await?;
    if banner.code != 220 {
        return Some(false);
    }
    let hostname = &config.smtp.hostname;
    let mut caps = ehlo(&mut conn, hostname, steps).await?;
    if caps.contains("STARTTLS") {
        let reply = ask(&mut conn, "starttls", Some("STARTTLS".into()), Context::StartTls, steps).await?;
        if reply.code == 220 {
            conn = starttls(conn, host, options.timeout, steps).await?;
            caps = ehlo(&mut conn, hostname, steps).await?;
        }
    } else {
        steps.push(Step {
            step: "starttls",
            sent: None,
            code: None,
            reply: "not offered".into(),
            ok: false,
            meaning: "The server does not offer STARTTLS: mail to it travels unencrypted.".into(),
            advice: Some("Enable STARTTLS on the server (any certificate encrypts; a valid one allows MTA-STS and DANE).".into()),
            millis: 0,
        });
    }
    let _ = caps;
    let mail = ask(&mut conn, "mail", Some(format!("MAIL FROM:<{}>", options.from)), Context::Mail, steps).await?;
    if !mail.is_positive() {
        let _ = conn.send(b"QUIT\r\n").await;
        return Some(false);
    }
    let rcpt = ask(&mut conn, "rcpt", Some(format!("RCPT TO:<{recipient}>")), Context::Rcpt, steps).await?;
    let mut accepted = rcpt.is_positive();
    if accepted && let Some((_, domain)) = recipient.rsplit_once('@') {
        catch_all(&mut conn, domain, steps).await?;
    }
    if accepted && options.data {
        let data = ask(&mut conn, "data", Some("DATA".into()), Context::Data, steps).await?;
        if data.code == 354 {
            let message = test_message(hostname, &options.from, recipient);
            let _ = conn.send(&dot_stuff(message.as_bytes())).await;
            let sent = Some("(test message)".to_string());
            let reply = ask(&mut conn, "message", None, Context::Message, steps).await?;
            if let Some(last) = steps.last_mut() {
                last.sent = sent;
            }
            accepted = reply.is_positive();
        } else {
            accepted = false;
        }
    } else {
        let _ = conn.send(b"RSET\r\n").await;
        let _ = conn.read_reply().await;
    }
    let _ = conn.send(b"QUIT\r\n").await;
    Some(accepted)
}

/// Asks RCPT for an address nobody has: a server that accepts it accepts every address
/// (a catch-all), so its "250" to the real recipient proves nothing.
async fn catch_all(conn: &mut Conn, domain: &str, steps: &mut Vec<Step>) -> Option<()> {
    let line = format!("RCPT TO:<{}>", unlikely_address(domain));
    let reply = ask(conn, "catch-all", Some(line), Context::Rcpt, steps).await?;
    let last = steps.last_mut()?;
    if reply.is_positive() {
        last.ok = false;
        last.meaning =
            "The server accepts an address nobody has: it is a catch-all, so its acceptance of the recipient proves nothing.".into();
        last.advice = Some("Recipient verification by callout cannot tell real addresses there: use LDAP, or a list.".into());
    } else {
        last.ok = true;
        last.meaning = "The server refuses an address nobody has: its answers about recipients can be trusted.".into();
        last.advice = None;
    }
    Some(())
}

/// Sends `line` (none: only reads, as for the banner) and records the reply as a step.
async fn ask(conn: &mut Conn, name: &'static str, line: Option<String>, context: Context, steps: &mut Vec<Step>) -> Option<Reply> {
    let started = Instant::now();
    if let Some(line) = &line
        && let Err(reply) = conn.send(format!("{line}\r\n").as_bytes()).await
    {
        steps.push(step(name, Some(line.clone()), Err(reply.text), started, context));
        return None;
    }
    match conn.read_reply().await {
        Ok(reply) => {
            steps.push(step(name, line, Ok(&reply), started, context));
            Some(reply)
        }
        Err(reply) => {
            steps.push(step(name, line, Err(reply.text), started, context));
            None
        }
    }
}

async fn ehlo(conn: &mut Conn, hostname: &str, steps: &mut Vec<Step>) -> Option<std::collections::HashSet<String>> {
    let started = Instant::now();
    match conn.ehlo(hostname).await {
        Ok(caps) => {
            let mut listed: Vec<&str> = caps.iter().map(String::as_str).collect();
            listed.sort_unstable();
            let ok = Reply::new(250, "", listed.join(" "));
            steps.push(step("ehlo", Some(format!("EHLO {hostname}")), Ok(&ok), started, Context::Ehlo));
            Some(caps)
        }
        Err(reply) => {
            steps.push(step("ehlo", Some(format!("EHLO {hostname}")), Ok(&reply), started, Context::Ehlo));
            None
        }
    }
}

/// The TLS handshake, with any certificate (as opportunistic senders do); whether the
/// certificate would pass verification (MTA-STS, `route_tls = "verify"`) is told apart.
async fn starttls(conn: Conn, host: &Route, timeout: Duration, steps: &mut Vec<Step>) -> Option<Conn> {
    let started = Instant::now();
    let any = rempart_smtp::tls::any_certificate().ok()?;
    let name = server_name(&host.host)?;
    let mut stream = conn.io.into_inner();
    let handshake = tokio::time::timeout(timeout, stream.connect_tls(&TlsConnector::from(Arc::new(any)), name.clone())).await;
    if let Err(e) = handshake.map_err(|_| "timed out".to_string()).and_then(|r| r.map_err(|e| e.to_string())) {
        let advice = "The server offers STARTTLS but its TLS does not work: fix its certificate and key configuration.";
        steps.push(Step {
            step: "tls",
            sent: None,
            code: None,
            reply: e,
            ok: false,
            meaning: "The TLS handshake failed.".into(),
            advice: Some(advice.into()),
            millis: started.elapsed().as_millis() as u64,
        });
        return None;
    }
    let tls = stream.client_tls()?;
    let version = tls.protocol_version().map(|v| format!("{v:?}")).unwrap_or_default();
    let verified = verify_certificate(tls, &name);
    let (ok, meaning, advice) = match &verified {
        Ok(()) => (true, format!("Encrypted ({version}); the certificate is valid for {}.", host.host), None),
        Err(e) => (
            false,
            format!("Encrypted ({version}), but the certificate does not verify: {e}."),
            Some("Opportunistic senders still deliver; senders that verify (MTA-STS enforce, DANE, route_tls = \"verify\") will not. Install a certificate for the host's name from a public CA.".to_string()),
        ),
    };
    steps.push(Step {
        step: "tls",
        sent: None,
        code: None,
        reply: version,
        ok,
        meaning,
        advice,
        millis: started.elapsed().as_millis() as u64,
    });
    Some(Conn { io: BufReader::new(stream), timeout })
}

fn verify_certificate(tls: &rustls::ClientConnection, name: &rustls_pki_types::ServerName<'static>) -> Result<(), String> {
    let certificates = tls.peer_certificates().ok_or("no certificate")?;
    let (end_entity, intermediates) = certificates.split_first().ok_or("no certificate")?;
    let roots = rempart_smtp_client::system_roots().map_err(|e| e.to_string())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build().map_err(|e| e.to_string())?;
    verifier.verify_server_cert(end_entity, intermediates, name, &[], UnixTime::now()).map(|_| ()).map_err(|e| e.to_string())
}

fn test_message(hostname: &str, from: &str, to: &str) -> String {
    let date = rempart_model::date::rfc5322(rempart_model::date::unix_now());
    format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: Rempart probe\r\nDate: {date}\r\nMessage-ID: <probe-{}@{hostname}>\r\n\r\n\
         This is a test message sent by `rempart probe` on {hostname} to check that mail reaches you.\r\n",
        rempart_model::date::unix_now()
    )
}
