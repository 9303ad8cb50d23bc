//! What the visible text says: the phrases bulk mail and phishing are written with
//! (SpamAssassin's body rules, a few broad families rather than hundreds of patterns),
//! and the marks of a person replying (quoted text, a signature). Phrases are English
//! and French, found without regard to (ASCII) case in one pass (Aho-Corasick), in the
//! visible text up to `MAX_TEXT` bytes of each part.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind};

use super::{Context, Findings};

/// Text read, at most (phrases sit near the top; a hostile message can be huge).
const MAX_TEXT: usize = 64 * 1024;
/// Shouting: at least this many all-capital words of four letters or more…
const SHOUTED_WORDS: usize = 10;
/// …making at least this share of the words.
const SHOUTED_SHARE: f64 = 0.05;

/// Runs of exclamation marks ("!!") in the text, at least.
const EXCLAIMED_RUNS: usize = 3;

/// Each family: its symbol and the phrases that find it.
const PHRASES: &[(&str, &[&str])] = &[
    ("BODY_CLICK_HERE", &["click here", "click below", "click the link below", "cliquez ici", "cliquez sur le lien"]),
    (
        "BODY_OPT_OUT",
        &[
            "to be removed",
            "remove me",
            "removed from our",
            "removed from this list",
            "opt-out",
            "opt out",
            "no longer wish to receive",
            "do not wish to receive",
            "this is not spam",
            "ne plus recevoir",
        ],
    ),
    (
        "BODY_GUARANTEE",
        &["guarantee", "no obligation", "risk free", "risk-free", "100%", "no cost to you", "satisfaction assured", "garanti"],
    ),
    (
        "BODY_URGENCY",
        &[
            "act now",
            "urgent",
            "limited time",
            "expires today",
            "within 24 hours",
            "within 48 hours",
            "final notice",
            "last chance",
            "don't miss",
            "immediate action",
            "dernier rappel",
            "sous 24 heures",
            "sous 48 heures",
        ],
    ),
    (
        "BODY_ACCOUNT_ALERT",
        &[
            "verify your",
            "confirm your",
            "validate your",
            "update your account",
            "update your payment",
            "update your billing",
            "account has been suspended",
            "account has been locked",
            "account has been limited",
            "account will be suspended",
            "account will be closed",
            "unusual sign-in",
            "unusual activity",
            "suspicious activity",
            "password expires",
            "password will expire",
            "mailbox is full",
            "storage is full",
            "vérifier votre",
            "confirmer votre",
            "compte a été suspendu",
            "compte sera suspendu",
        ],
    ),
    (
        "BODY_DEAR_GENERIC",
        &[
            "dear friend",
            "dear customer",
            "dear user",
            "dear sir",
            "dear valued",
            "dear member",
            "dear client",
            "dear account holder",
            "dear beneficiary",
            "dear winner",
            "cher client",
            "chère cliente",
        ],
    ),
    (
        "BODY_CRYPTO",
        &[
            "bitcoin",
            "btc ",
            "usdt",
            "usdc",
            "cryptocurrenc",
            "crypto wallet",
            "airdrop",
            "walletconnect",
            "metamask",
            "seed phrase",
            "ethereum",
            "eth ",
            "your wallet",
            "connect wallet",
            "blockchain",
        ],
    ),
    (
        "BODY_ADVANCE_FEE",
        &[
            "next of kin",
            "beneficiary",
            "inheritance",
            "compensation fund",
            "restitution",
            "consignment",
            "barrister",
            "diplomat",
            "transfer the fund",
            "transfer of the fund",
            "my late",
            "deceased",
            "foreign partner",
            "strictly confidential",
            "atm card",
            "western union",
            "moneygram",
            "lottery",
            "you have won",
            "claim your prize",
            "united nations",
            "united nation ",
            "héritage",
        ],
    ),
    (
        "BODY_EASY_MONEY",
        &[
            "work from home",
            "part-time job",
            "part time job",
            "extra income",
            "earn up to",
            "make money",
            "financial freedom",
            "be your own boss",
            "home based business",
            "travail à domicile",
        ],
    ),
    (
        "BODY_SPAM_GOODS",
        &[
            "viagra",
            "cialis",
            "online pharmacy",
            "weight loss",
            "lose weight",
            "libido",
            "erection",
            "penis",
            "horny",
            "casino",
            "refinanc",
            "mortgage rate",
            "lowest rate",
            "debt consolidation",
            "credit repair",
            "bad credit",
            "replica watch",
            "human growth hormone",
        ],
    ),
    (
        "BODY_MONEY",
        &["million dollars", "millions of dollars", "us$", "usd ", "cash bonus", "earn $", "make $", "$$$", "000,000", "000.000"],
    ),
    (
        "BODY_BULK_DISCLAIMER",
        &[
            "one-time mailing",
            "one time mailing",
            "no need to remove",
            "no removal is necessary",
            "not unsolicited",
            "s.1618",
            "s. 1618",
            "bill 1618",
            "under bill",
            "section 301",
            "in compliance with the proposed",
            "in compliance with state",
            "in compliance with all state",
            "in compliance with federal",
            "in compliance with current federal",
            "in compliance with strict anti-abuse",
            "in compliance with our strict",
            "e-mail bill",
            "email bill",
            "106th congress",
            "opted in",
            "opt-in list",
            "you have previously",
            "address was obtained",
            "removal instructions",
            "with remove in",
        ],
    ),
    // What a subscribed publication says of itself: a sign of wanted bulk mail.
    (
        "BODY_NEWSLETTER",
        &[
            "you subscribed",
            "you are subscribed",
            "you're subscribed",
            "subscribed to",
            "subscribed as",
            "subscription to",
            "in this issue",
            "the editor",
            "this week's",
            "newsletter",
            "to a friend",
            "forward this",
            "back issues",
            "vous êtes abonné",
            "lettre d'information",
            "dans ce numéro",
        ],
    ),
];

/// The attribution line of a quoted reply ("On Monday, Bob wrote:").
const ATTRIBUTIONS: &[&str] = &["wrote:", "writes:", "a écrit :", "a écrit:"];

/// Every phrase of every family (and the attributions, as family `PHRASES.len()`) in one
/// automaton, matched without regard to ASCII case: one pass over the text.
struct Phrases {
    finder: AhoCorasick,
    /// The family of each pattern, and the pattern.
    patterns: Vec<(usize, &'static str)>,
}

static FINDER: LazyLock<Option<Phrases>> = LazyLock::new(|| {
    let families = PHRASES.iter().map(|(_, phrases)| *phrases).chain(std::iter::once(ATTRIBUTIONS));
    let patterns: Vec<(usize, &'static str)> = families.enumerate().flat_map(|(f, ps)| ps.iter().map(move |p| (f, *p))).collect();
    let finder =
        AhoCorasick::builder().ascii_case_insensitive(true).kind(Some(AhoCorasickKind::DFA)).build(patterns.iter().map(|(_, p)| p));
    // The patterns are this file's constants: a build error is a bug caught by the tests.
    finder.ok().map(|finder| Phrases { finder, patterns })
});

pub fn run(ctx: &Context<'_>, out: &mut Findings) {
    let a = ctx.analysis;
    let plain = cut(&a.plain_text);
    let texts = text_with_case(a);
    // The first phrase found of each family.
    let mut found: Vec<Option<&'static str>> = vec![None; PHRASES.len() + 1];
    if let Some(phrases) = FINDER.as_ref() {
        for text in &texts {
            for m in phrases.finder.find_iter(text) {
                let (family, phrase) = phrases.patterns[m.pattern().as_usize()];
                found[family].get_or_insert(phrase);
            }
        }
    }
    for ((symbol, _), phrase) in PHRASES.iter().zip(&found) {
        if let Some(phrase) = phrase {
            out.hit_with(symbol, Some(format!("\u{201c}{phrase}\u{201d}")));
        }
    }
    let (words, shouted) = shouting(&texts);
    if shouted >= SHOUTED_WORDS && shouted as f64 >= SHOUTED_SHARE * words as f64 {
        out.hit_with("BODY_SHOUTING", Some(format!("{shouted} of {words} words in capitals")));
    }
    let exclaimed: usize = texts.iter().map(|t| t.matches("!!").count()).sum();
    if exclaimed >= EXCLAIMED_RUNS {
        out.hit_with("BODY_EXCLAIM", Some(format!("{exclaimed} runs of exclamation marks")));
    }
    // A person replying: lines quoted from the message answered, or its attribution.
    let quoted = plain.lines().filter(|l| l.trim_start().starts_with('>')).count();
    if quoted >= 2 || found[PHRASES.len()].is_some() {
        out.hit("QUOTED_REPLY");
    }
    if plain.contains("\n-- \n") || plain.contains("\r\n-- \r\n") {
        out.hit("SIGNATURE_SEPARATOR");
    }
}

/// At most `MAX_TEXT` bytes of `text`, cut on a character boundary.
fn cut(text: &str) -> &str {
    &text[..text.floor_char_boundary(MAX_TEXT)]
}

/// The visible text as written (capitals kept).
fn text_with_case<'t>(a: &'t crate::message::Analysis<'_>) -> Vec<&'t str> {
    std::iter::once(cut(&a.plain_text)).chain(a.html.iter().map(|h| cut(&h.text))).collect()
}

/// Words of (ASCII) letters, and those of four letters or more all in capitals. ASCII
/// only: the cheap test is enough to tell shouting, and it runs on every message.
fn shouting(texts: &[&str]) -> (usize, usize) {
    let (mut words, mut shouted) = (0, 0);
    for word in texts.iter().flat_map(|t| t.split(|c: char| !c.is_ascii_alphabetic())).filter(|w| !w.is_empty()) {
        words += 1;
        if word.len() >= 4 && word.bytes().all(|b| b.is_ascii_uppercase()) {
            shouted += 1;
        }
    }
    (words, shouted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shouting_counts_long_capital_words() {
        assert_eq!(shouting(&["FREE MONEY NOW for YOU, ACT Today"]), (7, 2));
        assert_eq!(shouting(&["Il VA très BIEN"]), (5, 1));
    }

    #[test]
    fn every_phrase_is_lower_case_and_the_finder_builds() {
        assert!(FINDER.is_some());
        for phrase in PHRASES.iter().flat_map(|(_, ps)| ps.iter()).chain(ATTRIBUTIONS) {
            assert_eq!(*phrase, phrase.to_lowercase(), "{phrase}");
        }
    }

    #[test]
    fn cut_respects_characters() {
        let long = "é".repeat(MAX_TEXT);
        assert!(cut(&long).len() <= MAX_TEXT);
        assert!(cut(&long).chars().all(|c| c == 'é'));
    }
}
