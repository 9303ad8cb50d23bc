//! Authentication over DNS, with SpamAssassin's names: SPF for MAIL FROM and HELO
//! (25_spf.cf), DKIM (25_dkim.cf: DKIM_VALID_AU means a valid signature whose d=
//! is the author's From domain), ARC (25_arc.cf), DMARC (25_dmarc.cf); and the Authentication-Results
//! header (RFC 8601) for accepted mail.

use std::net::IpAddr;

use mail_auth::common::headers::HeaderWriter;
use mail_auth::dmarc::Policy;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::{AuthenticatedMessage, AuthenticationResults, DkimResult, DmarcResult, SpfResult};

use super::Findings;
use crate::ScanInput;
use crate::dns::Dns;

/// Runs the checks; returns the Authentication-Results header (with its name and CRLF),
/// or `None` when offline.
pub async fn run(dns: &Dns, input: &ScanInput<'_>, hostname: &str, out: &mut Findings) -> Option<String> {
    let auth = dns.authenticator()?;
    let ip: IpAddr = input.facts.client_ip()?;
    let helo = input.facts.helo.trim();
    // The HELO identity only when it is a name (an address literal has no SPF).
    let helo_spf = if helo.contains('.') && !helo.starts_with('[') && helo.parse::<IpAddr>().is_err() {
        dns.check_helo(ip, helo, hostname).await
    } else {
        None
    };
    let mail_domain = input.return_path.rsplit_once('@').map(|(_, d)| d);
    let mail_spf = if input.return_path.is_empty() { None } else { dns.check_mail_from(ip, helo, input.return_path, hostname).await };
    if let Some(spf) = &mail_spf {
        out.hit_with(spf_symbol(spf.result(), false), Some(format!("{} from {ip}", input.return_path)));
    }
    if let Some(spf) = &helo_spf {
        out.hit_with(spf_symbol(spf.result(), true), Some(format!("HELO {helo} from {ip}")));
    }
    let mut results = AuthenticationResults::new(hostname);
    if let Some(spf) = &helo_spf {
        results = results.with_spf_ehlo_result(spf, ip, helo);
    }
    if let Some(spf) = &mail_spf {
        results = results.with_spf_mailfrom_result(spf, ip, input.return_path, helo);
    }
    if let Some(message) = AuthenticatedMessage::parse(input.message) {
        let dkim = auth.verify_dkim(&message).await;
        let from_domain = message.from.first().and_then(|f| f.rsplit_once('@')).map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
        let signed = !message.dkim_headers.is_empty();
        let valid: Vec<_> = dkim.iter().filter(|o| o.result() == &DkimResult::Pass).collect();
        if signed {
            out.hit("DKIM_SIGNED");
        }
        if !valid.is_empty() {
            out.hit("DKIM_VALID");
        }
        if let Some(o) = valid.iter().find(|o| o.signature().is_some_and(|s| s.d.eq_ignore_ascii_case(&from_domain))) {
            out.hit_with("DKIM_VALID_AU", o.signature().map(|s| format!("d={} s={}", s.d, s.s)));
        }
        if signed && valid.is_empty() {
            let why = dkim.iter().map(|o| format!("{:?}", o.result())).next();
            out.hit_with("DKIM_INVALID", why);
        }
        results = results.with_dkim_results(&dkim, &from_domain);
        // ARC (RFC 8617): a chain that validates, or one that exists and does not.
        let arc = auth.verify_arc(&message).await;
        match arc.result() {
            DkimResult::Pass => out.hit("ARC_VALID"),
            DkimResult::None | DkimResult::TempError(_) => {}
            other => out.hit_with("ARC_INVALID", Some(format!("{other:?}"))),
        }
        if !matches!(arc.result(), DkimResult::None) {
            results = results.with_arc_result(&arc, ip);
        }
        // DMARC aligns with the MAIL FROM identity, or HELO for the null sender.
        let spf = mail_spf.as_ref().or(helo_spf.as_ref());
        if let Some(spf) = spf.filter(|_| !from_domain.is_empty()) {
            let spf_domain = mail_domain.unwrap_or(helo);
            let dmarc = auth.verify_dmarc(DmarcParameters::new(&message, &dkim, spf_domain, spf)).await;
            let pass = dmarc.spf_result() == &DmarcResult::Pass || dmarc.dkim_result() == &DmarcResult::Pass;
            let symbol = match (dmarc.dmarc_record().is_some(), pass, dmarc.policy()) {
                (false, _, _) => "DMARC_MISSING",
                (true, true, _) => "DMARC_PASS",
                (true, false, Policy::Reject) => "DMARC_REJECT",
                (true, false, Policy::Quarantine) => "DMARC_QUAR",
                (true, false, _) => "DMARC_NONE",
            };
            out.hit_with(symbol, Some(from_domain.clone()));
            results = results.with_dmarc_result(&dmarc);
        }
    }
    Some(results.to_header())
}

fn spf_symbol(result: SpfResult, helo: bool) -> &'static str {
    match (result, helo) {
        (SpfResult::Pass, false) => "SPF_PASS",
        (SpfResult::Fail, false) => "SPF_FAIL",
        (SpfResult::SoftFail, false) => "SPF_SOFTFAIL",
        (SpfResult::Neutral, false) => "SPF_NEUTRAL",
        (SpfResult::None, false) => "SPF_NONE",
        (SpfResult::TempError, false) => "T_SPF_TEMPERROR",
        (SpfResult::PermError, false) => "T_SPF_PERMERROR",
        (SpfResult::Pass, true) => "SPF_HELO_PASS",
        (SpfResult::Fail, true) => "SPF_HELO_FAIL",
        (SpfResult::SoftFail, true) => "SPF_HELO_SOFTFAIL",
        (SpfResult::Neutral, true) => "SPF_HELO_NEUTRAL",
        (SpfResult::None, true) => "SPF_HELO_NONE",
        (SpfResult::TempError, true) => "T_SPF_HELO_TEMPERROR",
        (SpfResult::PermError, true) => "T_SPF_HELO_PERMERROR",
    }
}
