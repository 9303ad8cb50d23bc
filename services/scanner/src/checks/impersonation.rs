//! Who the message pretends to be: a From name that shows the recipient's own domain or
//! a well-known brand while the address is elsewhere, a message "from" the recipient's
//! domain whose replies go outside it, and words or link names that mix alphabets
//! (Latin with Cyrillic or Greek look-alikes: "Рaypal" with a Cyrillic Р).

use rempart_model::config::BrandConfig;

use super::content::registrable;
use super::{Context, Findings, domain_of};

/// Brands phishing imitates most, with the domains (a registrable domain, or a first
/// label matching any suffix: "paypal" covers paypal.com, paypal.fr, paypal.co.uk) their
/// own mail comes from. `[[scanner.brand]]` adds to or replaces entries by name.
pub const BUILT_IN_BRANDS: &[(&str, &[&str])] = &[
    ("PayPal", &["paypal"]),
    ("Microsoft", &["microsoft", "office", "office365", "outlook", "live", "hotmail", "sharepoint", "microsoftonline", "skype"]),
    ("Office 365", &["microsoft", "office", "office365", "outlook", "microsoftonline"]),
    ("Microsoft 365", &["microsoft", "office", "office365", "outlook", "microsoftonline"]),
    ("OneDrive", &["microsoft", "live", "onedrive", "sharepoint"]),
    ("SharePoint", &["microsoft", "sharepoint", "sharepointonline"]),
    ("Outlook", &["microsoft", "outlook", "live", "hotmail", "office365"]),
    ("Apple", &["apple", "icloud", "itunes", "me.com", "mac.com"]),
    ("iCloud", &["apple", "icloud", "me.com"]),
    ("Amazon", &["amazon", "amazonses", "amazonaws", "a2z"]),
    ("Google", &["google", "gmail", "googlemail", "youtube", "googlegroups"]),
    ("Netflix", &["netflix"]),
    ("Facebook", &["facebook", "facebookmail", "meta", "fb"]),
    ("Instagram", &["instagram", "facebookmail", "meta"]),
    ("WhatsApp", &["whatsapp", "facebookmail", "meta"]),
    ("LinkedIn", &["linkedin"]),
    ("DocuSign", &["docusign"]),
    ("Dropbox", &["dropbox", "dropboxmail"]),
    ("Adobe", &["adobe", "adobesign", "echosign"]),
    ("DHL", &["dhl"]),
    ("FedEx", &["fedex"]),
    ("UPS", &["ups"]),
    ("La Poste", &["laposte", "labanquepostale"]),
    ("Colissimo", &["colissimo", "laposte"]),
    ("Chronopost", &["chronopost"]),
    ("Ameli", &["ameli"]),
    ("Assurance Maladie", &["ameli", "assurance-maladie"]),
    ("DGFiP", &["impots.gouv.fr", "dgfip.finances.gouv.fr"]),
    ("BNP Paribas", &["bnpparibas", "bnpparibas.com"]),
    ("Société Générale", &["societegenerale", "sg"]),
    ("Crédit Agricole", &["credit-agricole", "ca-paris"]),
    ("Banque Populaire", &["banquepopulaire"]),
    ("Caisse d'Epargne", &["caisse-epargne"]),
    ("La Banque Postale", &["labanquepostale"]),
    ("Bank of America", &["bankofamerica", "bofa"]),
    ("Wells Fargo", &["wellsfargo"]),
    ("Coinbase", &["coinbase"]),
    ("Binance", &["binance"]),
    ("Norton", &["norton", "nortonlifelock", "gen.digital"]),
    ("McAfee", &["mcafee"]),
];

/// A link's text this long at most can be a call to act in a brand's name.
const MAX_CALL_WORDS: usize = 6;
/// Words of such a call (folded as `words` folds them).
const CALL_WORDS: &[&str] = &[
    "sign",
    "signin",
    "login",
    "log",
    "verify",
    "confirm",
    "update",
    "view",
    "open",
    "access",
    "review",
    "secure",
    "security",
    "account",
    "support",
    "team",
    "pay",
    "payment",
    "document",
    "documents",
    "download",
    "mailbox",
    "portal",
    "password",
    "connexion",
    "connecter",
    "compte",
    "verifier",
    "confirmer",
    "acceder",
    "consulter",
    "ouvrir",
    "paiement",
];

/// One brand as the check uses it: its name's words, folded, and its domains.
#[derive(Debug, Clone)]
pub struct Brand {
    pub name: String,
    words: Vec<String>,
    domains: Vec<String>,
}

impl Brand {
    pub fn new(name: &str, domains: &[impl AsRef<str>]) -> Brand {
        Brand {
            name: name.to_string(),
            words: words(name),
            domains: domains.iter().map(|d| d.as_ref().trim_end_matches('.').to_ascii_lowercase()).collect(),
        }
    }

    /// The built-in brands, then `extra` (an entry named like a built-in one replaces it).
    pub fn list(extra: &[BrandConfig]) -> Vec<Brand> {
        let mut brands: Vec<Brand> = BUILT_IN_BRANDS.iter().map(|(name, domains)| Brand::new(name, domains)).collect();
        for added in extra {
            brands.retain(|b| !b.name.eq_ignore_ascii_case(&added.name));
            brands.push(Brand::new(&added.name, &added.domains));
        }
        brands
    }

    /// Whether mail from `domain` is the brand's own.
    fn owns(&self, domain: &str) -> bool {
        let site = registrable(domain);
        let first_label = site.split('.').next().unwrap_or("");
        self.domains
            .iter()
            .any(|d| if d.contains('.') { site == *d || domain.ends_with(&format!(".{d}")) || domain == d } else { first_label == d })
    }

    /// Whether `name_words` contains the brand's name as consecutive words.
    fn named_in(&self, name_words: &[String]) -> bool {
        !self.words.is_empty() && name_words.windows(self.words.len()).any(|w| w == self.words.as_slice())
    }
}

pub fn run(ctx: &Context<'_>, out: &mut Findings) {
    let Some(message) = ctx.analysis.message.as_ref() else { return };
    let from = message.from().and_then(|f| f.first());
    let from_name = from.and_then(|f| f.name()).unwrap_or("");
    let from_domain = from.and_then(|f| f.address()).and_then(domain_of);
    let recipient_domains = recipient_domains(ctx.recipients);

    if let Some(from_domain) = &from_domain {
        let shown = from_name.to_lowercase();
        let spoofed = recipient_domains.iter().find(|d| shows_domain(&shown, d) && registrable(from_domain) != registrable(d));
        if let Some(domain) = spoofed {
            out.hit_with("FROM_NAME_RCPT_DOMAIN", Some(format!("name shows {domain}, address is at {from_domain}")));
        }
        let name_words = words(from_name);
        if let Some(brand) = ctx.brands.iter().find(|b| b.named_in(&name_words) && !b.owns(from_domain)) {
            out.hit_with("FROM_NAME_BRAND", Some(format!("name shows {}, address is at {from_domain}", brand.name)));
        }
        let reply_to = message.reply_to().and_then(|r| r.first()).and_then(|r| r.address()).and_then(domain_of);
        if let Some(reply_domain) = reply_to
            && recipient_domains.iter().any(|d| registrable(from_domain) == registrable(d) && registrable(&reply_domain) != registrable(d))
        {
            out.hit_with("REPLYTO_OUT_RCPT_DOMAIN", Some(format!("from {from_domain}, replies to {reply_domain}")));
        }
    }

    let subject = ctx.analysis.subject().unwrap_or("");
    if let Some(word) = [from_name, subject].iter().flat_map(|t| t.split(|c: char| !c.is_alphanumeric())).find(|w| mixes_scripts(w)) {
        out.hit_with("MIXED_SCRIPT_WORD", Some(word.to_string()));
    }
    // A short call to act in a brand's name ("Sign in to Microsoft", "PayPal account")
    // on a link leading somewhere the brand does not own. A headline about the brand
    // (a newsletter's "Microsoft ships …") is longer and asks nothing.
    let anchors = ctx.analysis.html.iter().flat_map(|h| h.anchors.iter()).take(200);
    let calls = anchors
        .map(|a| (words(&a.text), &a.href))
        .filter(|(text, _)| text.len() <= MAX_CALL_WORDS && text.iter().any(|w| CALL_WORDS.contains(&w.as_str())));
    let brand_link = calls
        .filter_map(|(text, href)| Some((text, super::content::host_of(href)?)))
        .find_map(|(text, host)| ctx.brands.iter().find(|b| b.named_in(&text) && !b.owns(&host)).map(|b| (b.name.clone(), host)));
    if let Some((brand, host)) = brand_link {
        out.hit_with("LINK_TEXT_BRAND", Some(format!("a link showing {brand} leads to {host}")));
    }
    let hosts = ctx.analysis.html.iter().flat_map(|h| h.anchors.iter()).filter_map(|a| super::content::host_of(&a.href)).take(200);
    if let Some(host) = hosts.chain(from_domain).find(|h| h.split('.').any(|label| mixes_scripts(&unicode_label(label)))) {
        let (shown, _) = idna::domain_to_unicode(&host);
        out.hit_with("MIXED_SCRIPT_DOMAIN", Some(format!("{host} ({shown})")));
    }
}

/// The recipients' domains, lower-case, each once.
fn recipient_domains(recipients: &[String]) -> Vec<String> {
    let mut domains: Vec<String> = recipients.iter().filter_map(|r| domain_of(r)).collect();
    domains.sort();
    domains.dedup();
    domains
}

/// `domain` written in `text` as a whole name (not inside a longer one).
fn shows_domain(text: &str, domain: &str) -> bool {
    let name_char = |c: char| c.is_alphanumeric() || c == '-';
    text.match_indices(domain).any(|(at, _)| {
        let mut before = text[..at].chars().rev();
        let mut after = text[at + domain.len()..].chars();
        let starts = before.next().is_none_or(|c| !name_char(c) && c != '.');
        let ends = match after.next() {
            None => true,
            Some('.') => after.next().is_none_or(|c| !name_char(c)),
            Some(c) => !name_char(c),
        };
        starts && ends
    })
}

/// Lower-case words with the common Latin accents removed ("Société" → "societe").
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase().chars().map(fold_accent).collect())
        .collect()
}

fn fold_accent(c: char) -> char {
    match c {
        'à' | 'â' | 'ä' | 'á' | 'ã' => 'a',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'î' | 'ï' | 'í' => 'i',
        'ô' | 'ö' | 'ó' | 'õ' => 'o',
        'ù' | 'û' | 'ü' | 'ú' => 'u',
        'ç' => 'c',
        'ñ' => 'n',
        _ => c,
    }
}

/// A host label in Unicode (an `xn--` label decoded; an undecodable one as it is).
fn unicode_label(label: &str) -> String {
    if !label.starts_with("xn--") {
        return label.to_string();
    }
    let (decoded, result) = idna::domain_to_unicode(label);
    if result.is_ok() { decoded } else { label.to_string() }
}

#[derive(PartialEq, Clone, Copy)]
enum Script {
    Latin,
    Cyrillic,
    Greek,
}

fn script(c: char) -> Option<Script> {
    match c {
        'a'..='z' | 'A'..='Z' | '\u{00C0}'..='\u{024F}' => Some(Script::Latin),
        '\u{0400}'..='\u{04FF}' => Some(Script::Cyrillic),
        '\u{0370}'..='\u{03FF}' => Some(Script::Greek),
        _ => None,
    }
}

/// A word with letters of Latin and of Cyrillic or Greek: look-alike letters standing in
/// for others. Words written wholly in one alphabet are not.
pub fn mixes_scripts(word: &str) -> bool {
    let mut seen: Option<Script> = None;
    for s in word.chars().filter_map(script) {
        match seen {
            None => seen = Some(s),
            Some(first) if first != s => return true,
            Some(_) => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brands_by_name_and_domain() {
        let brands = Brand::list(&[BrandConfig { name: "Acme Bank".into(), domains: vec!["acmebank.example".into()] }]);
        let paypal = brands.iter().find(|b| b.name == "PayPal").expect("built in");
        assert!(paypal.named_in(&words("PayPal Service")) && paypal.named_in(&words("Service-PAYPAL")));
        assert!(!paypal.named_in(&words("PayPalService")), "one word that only starts with it");
        assert!(paypal.owns("mail.paypal.co.uk") && paypal.owns("paypal.fr"));
        assert!(!paypal.owns("paypal-secure.example") && !paypal.owns("evil.example"));
        let sg = brands.iter().find(|b| b.name == "Société Générale").expect("built in");
        assert!(sg.named_in(&words("Societe Generale - Alerte")));
        let acme = brands.iter().find(|b| b.name == "Acme Bank").expect("added");
        assert!(acme.owns("news.acmebank.example") && !acme.owns("acmebank.evil.example"));
    }

    #[test]
    fn domains_shown_in_names() {
        assert!(shows_domain("example.com it support", "example.com"));
        assert!(shows_domain("admin@example.com", "example.com"));
        assert!(shows_domain("mailbox (example.com)", "example.com"));
        assert!(!shows_domain("notexample.com", "example.com"));
        assert!(!shows_domain("example.com.evil.test", "example.com"));
    }

    #[test]
    fn mixed_scripts() {
        assert!(mixes_scripts("Рaypal"), "Cyrillic Р then Latin");
        assert!(mixes_scripts("micrοsoft"), "Greek omicron");
        assert!(!mixes_scripts("Привет") && !mixes_scripts("Société") && !mixes_scripts("Ελλάδα") && !mixes_scripts("123"));
        assert_eq!(unicode_label("xn--pypal-4ve"), "pаypal");
        assert!(mixes_scripts(&unicode_label("xn--pypal-4ve")));
    }
}
