//! Authentication checks that need DNS: SPF for MAIL FROM and HELO (SpamAssassin's
//! 25_spf.cf names: SPF_*, SPF_HELO_*, and T_SPF_*ERROR for temperror/permerror).

use mail_auth::SpfResult;

use super::Findings;
use crate::ScanInput;
use crate::dns::Dns;

pub async fn run(dns: &Dns, input: &ScanInput<'_>, hostname: &str, out: &mut Findings) {
    let Ok(ip) = input.facts.peer_ip.parse() else { return };
    let Some(spf) = dns.spf(ip, input.facts.helo.trim(), input.return_path, hostname).await else { return };
    if let Some(result) = spf.mail_from {
        out.hit_with(spf_symbol(result, false), Some(format!("{} from {ip}", input.return_path)));
    }
    if let Some(result) = spf.helo {
        out.hit_with(spf_symbol(result, true), Some(format!("HELO {} from {ip}", input.facts.helo.trim())));
    }
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
