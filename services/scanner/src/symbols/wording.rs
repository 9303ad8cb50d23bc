//! The rules that work without learning: what the words say (`checks::wording`), the
//! headers of bulk mail and of conversation (`checks::headers`), a brand named in a
//! link's text (`checks::impersonation`). Rempart's names, SpamAssassin's where it has
//! the same rule (MIME_BASE64_TEXT, FROM_LOCAL_DIGITS). A negative weight is a sign of
//! mail a person wrote.

use super::{SymbolDef, def};

pub const WORDING: &[SymbolDef] = &[
    def("BODY_CLICK_HERE", 0.5, "body", "Asks the reader to click here", "Demande au lecteur de « cliquer ici »."),
    def(
        "BODY_OPT_OUT",
        0.5,
        "body",
        "Bulk-mail wording about being removed from a list",
        "Formule d'envoi en masse pour être retiré d'une liste.",
    ),
    def("BODY_GUARANTEE", 0.5, "body", "Promises a guarantee, no risk or 100%", "Promet une garantie, « sans risque » ou « 100 % »."),
    def("BODY_URGENCY", 0.5, "body", "Presses the reader to act at once", "Presse le lecteur d'agir tout de suite."),
    def(
        "BODY_ACCOUNT_ALERT",
        0.8,
        "body",
        "Asks the reader to verify or update an account, or warns it is suspended",
        "Demande de vérifier ou de mettre à jour un compte, ou annonce sa suspension.",
    ),
    def(
        "BODY_DEAR_GENERIC",
        0.8,
        "body",
        "Greets the reader without a name (dear customer, dear friend)",
        "Salue le lecteur sans le nommer (« cher client », « dear friend »).",
    ),
    def(
        "BODY_CRYPTO",
        0.5,
        "body",
        "Speaks of crypto-currency, wallets or tokens to claim",
        "Parle de crypto-monnaie, de portefeuille ou de jetons à réclamer.",
    ),
    def(
        "BODY_ADVANCE_FEE",
        1.0,
        "body",
        "Wording of advance-fee fraud (inheritance, beneficiary, lottery, funds to transfer)",
        "Formules de l'escroquerie à l'avance de frais (héritage, bénéficiaire, loterie, fonds à transférer).",
    ),
    def("BODY_EASY_MONEY", 0.5, "body", "Promises easy money or work from home", "Promet de l'argent facile ou du travail à domicile."),
    def(
        "BODY_SPAM_GOODS",
        0.8,
        "body",
        "Sells what spam sells (pills, loans, weight loss, casinos)",
        "Vend ce que vend le spam (médicaments, crédits, régimes, casinos).",
    ),
    def("BODY_EXCLAIM", 0.5, "body", "Many runs of exclamation marks", "De nombreuses suites de points d'exclamation."),
    def("BODY_MONEY", 0.5, "body", "Speaks of large sums of money", "Parle de grosses sommes d'argent."),
    def("BODY_SHOUTING", 0.5, "body", "Much of the text is in capitals", "Une grande partie du texte est en majuscules."),
    def(
        "QUOTED_REPLY",
        -0.5,
        "body",
        "Replies to a message, quoting it (sign of a conversation)",
        "Répond à un message en le citant (signe d'une conversation).",
    ),
    def(
        "SIGNATURE_SEPARATOR",
        -0.2,
        "body",
        "Ends with a personal signature (sign of a person writing)",
        "Se termine par une signature personnelle (signe d'une personne qui écrit).",
    ),
    def(
        "REPLY_IN_THREAD",
        -0.3,
        "headers",
        "Answers an earlier message (In-Reply-To, References)",
        "Répond à un message précédent (en-têtes In-Reply-To, References).",
    ),
    def("MAILING_LIST", -0.3, "headers", "Sent through a mailing list (List-Id)", "Envoyé par une liste de diffusion (List-Id)."),
    def("MUA_PERSONAL", -0.3, "headers", "Written with a personal mail program", "Écrit avec un logiciel de messagerie personnel."),
    def("PRIORITY_HIGH", 0.5, "headers", "Marked high priority", "Marqué comme prioritaire."),
    def("TO_UNDISCLOSED", 0.5, "headers", "Sent to undisclosed recipients", "Envoyé à des destinataires non divulgués."),
    def(
        "FROM_LOCAL_DIGITS",
        0.5,
        "headers",
        "The sender's address is a name followed by a run of digits",
        "L'adresse de l'expéditeur est un nom suivi d'une suite de chiffres.",
    ),
    def("SUBJ_ADV", 1.0, "headers", "The subject is labelled as advertising (ADV:)", "L'objet est étiqueté comme publicité (ADV:)."),
    def(
        "SUBJ_SPACED_CODE",
        0.8,
        "headers",
        "The subject hides a tracking code after a run of spaces",
        "L'objet cache un code de suivi après une suite d'espaces.",
    ),
    def("SUBJ_EXCLAIM", 0.3, "headers", "Exclamation mark in the subject", "Point d'exclamation dans l'objet."),
    def("SUBJ_MONEY", 0.3, "headers", "The subject speaks of money or free offers", "L'objet parle d'argent ou de gratuité."),
    def(
        "MIME_BASE64_TEXT",
        0.5,
        "mime",
        "The text is base64-encoded (hides it from simple filters)",
        "Le texte est encodé en base64 (ce qui le cache aux filtres simples).",
    ),
    def(
        "URI_FREE_HOSTING",
        1.0,
        "links",
        "Links to a free hosting or storage service, where phishing pages are put",
        "Renvoie vers un hébergement ou un stockage gratuit, où l'on dépose les pages d'hameçonnage.",
    ),
    def(
        "LINK_TEXT_BRAND",
        2.0,
        "impersonation",
        "A link's text names a brand, but it leads to a site the brand does not own",
        "Le texte d'un lien nomme une marque, mais il mène à un site qui ne lui appartient pas.",
    ),
];
