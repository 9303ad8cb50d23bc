//! Every symbol the built-in checks can add: name, default weight, group, and the
//! description shown to senders and operators, in English and French. Names follow
//! SpamAssassin's where the meaning is the same; the others are noted.

/// A symbol's definition.
#[derive(Debug, Clone, Copy)]
pub struct SymbolDef {
    pub name: &'static str,
    pub weight: f64,
    pub group: &'static str,
    pub en: &'static str,
    pub fr: &'static str,
}

const fn def(name: &'static str, weight: f64, group: &'static str, en: &'static str, fr: &'static str) -> SymbolDef {
    SymbolDef { name, weight, group, en, fr }
}

pub const SYMBOLS: &[SymbolDef] = &[
    // Authentication: SPF (RFC 7208), SpamAssassin's names and roughly its weights.
    def(
        "SPF_PASS",
        -0.1,
        "auth",
        "SPF: sender matches SPF record",
        "SPF : le serveur émetteur est autorisé par le domaine de l'expéditeur.",
    ),
    def(
        "SPF_FAIL",
        0.9,
        "auth",
        "SPF: sender does not match SPF record (fail)",
        "SPF : le domaine de l'expéditeur interdit à ce serveur d'envoyer en son nom.",
    ),
    def(
        "SPF_SOFTFAIL",
        0.7,
        "auth",
        "SPF: sender does not match SPF record (softfail)",
        "SPF : le domaine de l'expéditeur ne reconnaît pas ce serveur (échec léger).",
    ),
    def(
        "SPF_NEUTRAL",
        0.6,
        "auth",
        "SPF: sender does not match SPF record (neutral)",
        "SPF : le domaine de l'expéditeur ne se prononce pas sur ce serveur.",
    ),
    def(
        "SPF_NONE",
        0.0,
        "auth",
        "SPF: sender does not publish an SPF record",
        "SPF : le domaine de l'expéditeur ne publie pas d'enregistrement SPF.",
    ),
    def(
        "T_SPF_TEMPERROR",
        0.01,
        "auth",
        "SPF: test of record failed (temperror)",
        "SPF : la vérification a échoué temporairement (erreur DNS).",
    ),
    def(
        "T_SPF_PERMERROR",
        0.01,
        "auth",
        "SPF: test of record failed (permerror)",
        "SPF : l'enregistrement SPF du domaine de l'expéditeur est invalide.",
    ),
    def(
        "SPF_HELO_PASS",
        -0.1,
        "auth",
        "SPF: HELO matches SPF record",
        "SPF : le nom annoncé par le serveur émetteur l'autorise à envoyer.",
    ),
    def(
        "SPF_HELO_FAIL",
        0.5,
        "auth",
        "SPF: HELO does not match SPF record (fail)",
        "SPF : le nom annoncé par le serveur émetteur lui interdit d'envoyer.",
    ),
    def(
        "SPF_HELO_SOFTFAIL",
        0.7,
        "auth",
        "SPF: HELO does not match SPF record (softfail)",
        "SPF : le nom annoncé par le serveur émetteur ne le reconnaît pas (échec léger).",
    ),
    def(
        "SPF_HELO_NEUTRAL",
        0.1,
        "auth",
        "SPF: HELO does not match SPF record (neutral)",
        "SPF : le nom annoncé par le serveur émetteur ne se prononce pas.",
    ),
    def(
        "SPF_HELO_NONE",
        0.0,
        "auth",
        "SPF: HELO does not publish an SPF record",
        "SPF : le nom annoncé par le serveur émetteur ne publie pas d'enregistrement SPF.",
    ),
    def(
        "T_SPF_HELO_TEMPERROR",
        0.01,
        "auth",
        "SPF: test of HELO record failed (temperror)",
        "SPF : la vérification du nom annoncé a échoué temporairement (erreur DNS).",
    ),
    def(
        "T_SPF_HELO_PERMERROR",
        0.01,
        "auth",
        "SPF: test of HELO record failed (permerror)",
        "SPF : l'enregistrement SPF du nom annoncé est invalide.",
    ),
    // ARC (RFC 8617), DKIM (RFC 6376) and DMARC (RFC 7489).
    def(
        "ARC_VALID",
        -0.1,
        "auth",
        "Message has a valid ARC signature",
        "Le message porte une chaîne ARC valide (transmis par un intermédiaire de confiance).",
    ),
    def(
        "ARC_INVALID",
        0.1,
        "auth",
        "ARC signature exists, but is not valid",
        "Le message porte une chaîne ARC, mais elle n'est pas valide.",
    ),
    def(
        "DKIM_SIGNED",
        0.1,
        "auth",
        "Message has a DKIM signature, not necessarily valid",
        "Le message porte une signature DKIM, pas forcément valide.",
    ),
    def(
        "DKIM_VALID",
        -0.1,
        "auth",
        "Message has at least one valid DKIM signature",
        "Le message porte au moins une signature DKIM valide.",
    ),
    def(
        "DKIM_VALID_AU",
        -0.1,
        "auth",
        "Message has a valid DKIM signature from the author's domain",
        "Le message porte une signature DKIM valide du domaine de l'expéditeur affiché.",
    ),
    def(
        "DKIM_INVALID",
        0.1,
        "auth",
        "DKIM signature exists, but is not valid",
        "Le message porte une signature DKIM, mais elle n'est pas valide.",
    ),
    def(
        "DMARC_PASS",
        -0.1,
        "auth",
        "DMARC: the author's domain authenticates this message",
        "DMARC : le domaine de l'expéditeur affiché authentifie ce message.",
    ),
    def(
        "DMARC_REJECT",
        6.0,
        "auth",
        "DMARC fails and the author's domain says reject (p=reject)",
        "DMARC : échec, et le domaine de l'expéditeur demande le rejet de tels messages.",
    ),
    def(
        "DMARC_QUAR",
        3.0,
        "auth",
        "DMARC fails and the author's domain says quarantine",
        "DMARC : échec, et le domaine de l'expéditeur demande la mise en quarantaine.",
    ),
    def(
        "DMARC_NONE",
        0.5,
        "auth",
        "DMARC fails; the author's domain asks nothing (p=none)",
        "DMARC : échec, le domaine de l'expéditeur ne demande aucune action.",
    ),
    def(
        "DMARC_MISSING",
        0.0,
        "auth",
        "The author's domain publishes no DMARC policy",
        "Le domaine de l'expéditeur affiché ne publie pas de politique DMARC.",
    ),
    // The client's reverse DNS and the sender domain's records.
    def(
        "RDNS_NONE",
        1.3,
        "connection",
        "Delivered by a host with no reverse DNS (PTR)",
        "Le serveur émetteur n'a pas de nom inverse (PTR) dans le DNS.",
    ),
    // Ours: SpamAssassin has no rule for forward-confirmed reverse DNS.
    def(
        "RDNS_UNCONFIRMED",
        0.8,
        "connection",
        "The client's reverse DNS name does not resolve back to its address",
        "Le nom inverse du serveur émetteur ne renvoie pas vers son adresse IP.",
    ),
    def(
        "NO_DNS_FOR_FROM",
        1.0,
        "connection",
        "Envelope sender has no MX or A DNS records",
        "Le domaine de l'expéditeur n'a ni serveur de messagerie (MX) ni adresse (A) dans le DNS.",
    ),
    // Connection (what the client said about itself).
    def(
        "RCVD_NUMERIC_HELO",
        1.2,
        "connection",
        "HELO is an IP address literal, not a host name",
        "La machine émettrice s'est présentée avec une adresse IP au lieu d'un nom d'hôte.",
    ),
    def(
        "HELO_NO_DOMAIN",
        1.0,
        "connection",
        "HELO is not a fully qualified domain name",
        "La machine émettrice s'est présentée avec un nom qui n'est pas un nom de domaine complet.",
    ),
    def("HELO_LOCALHOST", 2.0, "connection", "HELO is localhost", "La machine émettrice s'est présentée sous le nom « localhost »."),
    // Not in SpamAssassin: a client that claims to be us.
    def(
        "HELO_IS_OUR_NAME",
        3.0,
        "connection",
        "HELO claims to be this gateway",
        "La machine émettrice s'est présentée sous le nom de notre propre passerelle.",
    ),
    // Headers.
    def("MISSING_DATE", 1.4, "headers", "Missing Date: header", "L'en-tête Date est absent du message."),
    def(
        "INVALID_DATE",
        1.0,
        "headers",
        "Invalid Date: header (not RFC 5322)",
        "L'en-tête Date n'est pas une date valide au sens de la RFC 5322.",
    ),
    def("MISSING_MID", 0.5, "headers", "Missing Message-Id: header", "L'en-tête Message-ID est absent du message."),
    def("MISSING_FROM", 1.0, "headers", "Missing From: header", "L'en-tête From (l'expéditeur affiché) est absent du message."),
    def("MISSING_HEADERS", 1.0, "headers", "Missing To: header", "L'en-tête To (le destinataire affiché) est absent du message."),
    def("MISSING_SUBJECT", 0.5, "headers", "Missing Subject: header", "L'en-tête Subject (l'objet) est absent du message."),
    // rspamd's name; here only when the addresses are in different domains.
    def(
        "MULTIPLE_FROM",
        2.0,
        "headers",
        "Two or more From: addresses in different domains",
        "Le message annonce plusieurs expéditeurs appartenant à des domaines différents.",
    ),
    def(
        "FREEMAIL_FORGED_REPLYTO",
        2.1,
        "headers",
        "Freemail in Reply-To, but not From",
        "Les réponses sont détournées vers une messagerie gratuite différente de l'expéditeur affiché.",
    ),
    def("SUBJ_ALL_CAPS", 0.5, "headers", "Subject is all capitals", "L'objet du message est entièrement écrit en majuscules."),
    // MIME structure and attachments.
    def("MIME_HTML_ONLY", 0.7, "mime", "Message only has text/html MIME parts", "Le message ne contient que du HTML, sans version texte."),
    def(
        "MIME_HTML_ONLY_MULTI",
        0.5,
        "mime",
        "Multipart message only has text/html MIME parts",
        "Le message en plusieurs parties ne contient que des parties HTML.",
    ),
    def(
        "MPART_ALT_DIFF",
        0.7,
        "mime",
        "HTML and text parts are different",
        "Les versions texte et HTML du message ont des contenus différents.",
    ),
    // rspamd's name: SpamAssassin has no rule for executables.
    def(
        "MIME_BAD_EXTENSION",
        4.0,
        "mime",
        "Executable attachment (.exe, .scr, .js, ...)",
        "Le message contient une pièce jointe exécutable (.exe, .scr, .js…), souvent porteuse de virus.",
    ),
    // Rempart's: the document extension in front hides the executable one.
    def(
        "MIME_DOUBLE_EXT",
        3.0,
        "mime",
        "Executable attachment disguised as a document (invoice.pdf.exe)",
        "Pièce jointe exécutable déguisée en document (facture.pdf.exe).",
    ),
    // Rempart's: an HTML file opens a local page, a favourite of credential phishing.
    def(
        "MIME_HTML_ATTACH",
        1.5,
        "mime",
        "HTML or SVG attachment (a page that opens outside the mail client's protections)",
        "Pièce jointe HTML ou SVG (une page qui s'ouvre hors des protections de la messagerie).",
    ),
    // rspamd's names (its mime_types module): what an archive attachment holds.
    def(
        "MIME_ENCRYPTED_ARCHIVE",
        2.5,
        "mime",
        "Password-protected archive attached (its contents cannot be checked)",
        "Archive protégée par mot de passe en pièce jointe (son contenu ne peut pas être vérifié).",
    ),
    // Rempart's.
    def(
        "MIME_ARCHIVE_EXECUTABLE",
        4.0,
        "mime",
        "Archive attachment holding an executable file",
        "Archive en pièce jointe contenant un fichier exécutable.",
    ),
    def(
        "MIME_ARCHIVE_IN_ARCHIVE",
        1.5,
        "mime",
        "Archive attachment holding another archive",
        "Archive en pièce jointe contenant une autre archive.",
    ),
    // SpamAssassin's name: no text at all (and no image or attachment).
    def("EMPTY_MESSAGE", 2.0, "mime", "Message appears to have no textual parts", "Le message ne contient aucun texte."),
    // Rempart's: text for filters, not readers.
    def(
        "HTML_HIDDEN_TEXT",
        1.5,
        "html",
        "HTML hides text from the reader (display:none, zero-size font, zero opacity)",
        "Le HTML cache du texte au lecteur (display:none, police de taille nulle, opacité nulle).",
    ),
    // Rempart's (rspamd has ZERO_WIDTH_SPACE_URL for links).
    def(
        "TEXT_ZERO_WIDTH",
        2.0,
        "html",
        "Invisible characters inside words (they split words to get past filters)",
        "Caractères invisibles à l'intérieur des mots (ils coupent les mots pour tromper les filtres).",
    ),
    // Impersonation (checks/impersonation.rs), Rempart's.
    def(
        "FROM_NAME_RCPT_DOMAIN",
        3.0,
        "impersonation",
        "From name shows the recipient's own domain, the address is elsewhere",
        "Le nom de l'expéditeur affiche le domaine du destinataire, mais l'adresse est ailleurs.",
    ),
    def(
        "REPLYTO_OUT_RCPT_DOMAIN",
        2.0,
        "impersonation",
        "From the recipient's own domain, but replies go outside it",
        "Prétend venir du domaine du destinataire, mais les réponses partent à l'extérieur.",
    ),
    def(
        "FROM_NAME_BRAND",
        3.0,
        "impersonation",
        "From name is a well-known brand, the address is not one of the brand's",
        "Le nom de l'expéditeur est celui d'une marque connue, mais l'adresse n'est pas la sienne.",
    ),
    def(
        "MIXED_SCRIPT_WORD",
        2.0,
        "impersonation",
        "From name or subject mixes alphabets in one word (look-alike letters)",
        "Le nom de l'expéditeur ou le sujet mélange des alphabets dans un mot (lettres sosies).",
    ),
    def(
        "MIXED_SCRIPT_DOMAIN",
        3.0,
        "impersonation",
        "Link or sender domain mixes alphabets (a look-alike of another name)",
        "Un lien ou le domaine de l'expéditeur mélange des alphabets (sosie d'un autre nom).",
    ),
    // Links (checks/links.rs).
    def(
        "NUMERIC_HTTP_ADDR",
        1.5,
        "links",
        "Link to a numeric IP address instead of a name",
        "Lien vers une adresse IP numérique au lieu d'un nom de domaine.",
    ),
    // Rempart's.
    def(
        "URI_USERINFO",
        2.5,
        "links",
        "Link with a name before '@' that hides its real destination (https://bank.example@evil.example/)",
        "Lien avec un nom avant « @ » qui masque sa vraie destination (https://banque.example@pirate.example/).",
    ),
    // Rempart's.
    def(
        "URI_SHORTENER",
        0.5,
        "links",
        "Link through a URL shortener (the destination is hidden)",
        "Lien passant par un raccourcisseur d'URL (la destination est masquée).",
    ),
    // Rempart's.
    def(
        "URI_SCRIPT_LINK",
        2.0,
        "links",
        "Link that runs a script or opens embedded data (javascript:, data:)",
        "Lien qui exécute un script ou ouvre des données intégrées (javascript:, data:).",
    ),
    // Rempart's.
    def(
        "URI_PUNYCODE",
        1.0,
        "links",
        "Link to an internationalised (punycode) name, which can imitate a known one",
        "Lien vers un nom internationalisé (punycode), qui peut imiter un nom connu.",
    ),
    // HTML.
    def("HTML_MESSAGE", 0.0, "html", "HTML included in message", "Le message contient du HTML."),
    def(
        "HTML_IMAGE_ONLY_04",
        1.6,
        "html",
        "HTML: images with 0-400 bytes of words",
        "Le HTML contient des images et seulement 0 à 400 octets de texte.",
    ),
    def(
        "HTML_IMAGE_ONLY_08",
        1.4,
        "html",
        "HTML: images with 400-800 bytes of words",
        "Le HTML contient des images et seulement 400 à 800 octets de texte.",
    ),
    def(
        "HTML_IMAGE_ONLY_12",
        1.2,
        "html",
        "HTML: images with 800-1200 bytes of words",
        "Le HTML contient des images et seulement 800 à 1200 octets de texte.",
    ),
    def(
        "HTML_IMAGE_ONLY_16",
        1.0,
        "html",
        "HTML: images with 1200-1600 bytes of words",
        "Le HTML contient des images et seulement 1200 à 1600 octets de texte.",
    ),
    def(
        "HTML_IMAGE_ONLY_20",
        0.8,
        "html",
        "HTML: images with 1600-2000 bytes of words",
        "Le HTML contient des images et seulement 1600 à 2000 octets de texte.",
    ),
    def(
        "HTML_IMAGE_ONLY_24",
        0.6,
        "html",
        "HTML: images with 2000-2400 bytes of words",
        "Le HTML contient des images et seulement 2000 à 2400 octets de texte.",
    ),
    def(
        "HTML_IMAGE_ONLY_28",
        0.4,
        "html",
        "HTML: images with 2400-2800 bytes of words",
        "Le HTML contient des images et seulement 2400 à 2800 octets de texte.",
    ),
    def(
        "HTML_IMAGE_ONLY_32",
        0.2,
        "html",
        "HTML: images with 2800-3200 bytes of words",
        "Le HTML contient des images et seulement 2800 à 3200 octets de texte.",
    ),
    def(
        "HTML_SHORT_LINK_IMG_1",
        0.6,
        "html",
        "HTML is very short with a linked image",
        "Le HTML est très court (moins de 1024 octets de texte) et contient une image cliquable.",
    ),
    def(
        "HTML_SHORT_LINK_IMG_2",
        0.4,
        "html",
        "HTML is very short with a linked image",
        "Le HTML est très court (1024 à 1536 octets de texte) et contient une image cliquable.",
    ),
    def(
        "HTML_SHORT_LINK_IMG_3",
        0.2,
        "html",
        "HTML is very short with a linked image",
        "Le HTML est très court (1536 à 2048 octets de texte) et contient une image cliquable.",
    ),
    def(
        "HTML_TITLE_SUBJ_DIFF",
        0.5,
        "html",
        "HTML title is much longer than the Subject",
        "Le titre de la page HTML est beaucoup plus long que l'objet du message.",
    ),
    def(
        "T_REMOTE_IMAGE",
        0.1,
        "html",
        "Message contains an external image",
        "Le message affiche une image hébergée sur un serveur distant.",
    ),
    def(
        "MIXED_HREF_CASE",
        2.0,
        "html",
        "Has href in mixed case",
        "Un lien HTML est écrit en casse mélangée (« HrEf »), procédé courant pour tromper les filtres.",
    ),
    // Not in SpamAssassin; named after MIXED_HREF_CASE.
    def(
        "MIXED_CENTER_CASE",
        1.0,
        "html",
        "Has a center tag in mixed case",
        "Une balise « center » est écrite en casse mélangée, procédé courant pour tromper les filtres.",
    ),
    // rspamd's name for a link whose text shows another domain than its target.
    def(
        "PHISHING",
        3.5,
        "html",
        "Link text shows one domain but the link goes to another",
        "Le texte d'un lien affiche un domaine alors que le lien mène vers un autre : signe d'hameçonnage.",
    ),
    // The auto-allowlist: its weight is computed per message (toward the sender's mean).
    def(
        "AWL",
        0.0,
        "reputation",
        "Adjusted toward this sender's past scores (auto-allowlist)",
        "Score rapproché de la moyenne des messages passés de cet expéditeur depuis ce réseau (liste blanche automatique).",
    ),
];

mod bayes;
mod fuzzy;
mod malware;
mod wording;

pub use bayes::{band_names, band_side, band_steps, bayes_bands};

/// Every built-in symbol: the scoring rules, Bayes's, the malware ones, the campaign memory's.
pub fn all() -> impl Iterator<Item = &'static SymbolDef> {
    SYMBOLS.iter().chain(bayes::BAYES).chain(wording::WORDING).chain(malware::MALWARE).chain(fuzzy::FUZZY)
}

pub fn lookup(name: &str) -> Option<&'static SymbolDef> {
    all().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_unique_and_described_in_both_languages() {
        let mut names = std::collections::HashSet::new();
        for s in super::all() {
            assert!(names.insert(s.name), "{} twice", s.name);
            assert!(!s.en.is_empty() && !s.fr.is_empty() && s.fr != s.en, "{}", s.name);
            assert!(s.name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'));
            assert!(s.weight.is_finite());
        }
    }
}
