//! What a sender can do about a refusal, by the kind of rule that scored: the
//! `/why/` page's advice, in the reader's language (the same advice `check-sender`
//! gives operators, put for the person whose mail bounced).

use rempart_model::SymbolHit;

use super::i18n::Lang;

/// Advice for the rules that counted against the message, most important first, each
/// said once.
pub fn for_symbols(symbols: &[SymbolHit], listed: Option<&str>, lang: Lang) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    let mut push = |text: &'static str| {
        if !out.contains(&text) {
            out.push(text);
        }
    };
    if listed.is_some() {
        push(pick(
            lang,
            "The recipient's domain blocks your address or your server by a list it keeps. Reach the recipient another way (telephone, another address) and ask their administrator to lift the entry.",
            "Le domaine du destinataire bloque votre adresse ou votre serveur par une liste qu'il tient. Joignez le destinataire autrement (téléphone, autre adresse) et demandez à son administrateur de retirer l'entrée.",
        ));
    }
    // Malware weighs nothing (the policy acts on it), so it is looked for by group.
    for symbol in symbols.iter().filter(|s| s.score > 0.0 || is_malware(s)) {
        let name = symbol.name.as_str();
        let text = match symbol.group.as_str() {
            "antivirus" if name.ends_with("_FAIL") => pick(
                lang,
                "The recipient's virus scanner could not check the message just now. Your server will try again by itself; nothing needs to change.",
                "L'antivirus du destinataire n'a pas pu vérifier le message pour l'instant. Votre serveur réessaiera de lui-même ; rien n'est à changer.",
            ),
            "antivirus" | "attachments" => pick(
                lang,
                "The message carries malware or an attachment of a kind the recipient does not accept (a program, a script, a shortcut, a disk image, an archive that cannot be checked). Have the sending computer checked by an up-to-date antivirus; to send a legitimate file, share it by a link or in a form the recipient accepts.",
                "Le message contient un logiciel malveillant ou une pièce jointe d'un type que le destinataire n'accepte pas (programme, script, raccourci, image disque, archive invérifiable). Faites vérifier l'ordinateur émetteur par un antivirus à jour ; pour envoyer un fichier légitime, partagez-le par un lien ou sous une forme que le destinataire accepte.",
            ),
            "auth" if name.contains("SPF") => pick(
                lang,
                "Your domain's SPF record does not allow the server that sent this message. Add that server (or your provider's include) to the SPF record in your DNS.",
                "L'enregistrement SPF de votre domaine n'autorise pas le serveur qui a envoyé ce message. Ajoutez ce serveur (ou l'include de votre fournisseur) à l'enregistrement SPF de votre DNS.",
            ),
            "auth" if name.contains("DKIM") || name.contains("ARC") => pick(
                lang,
                "The message's DKIM signature did not verify. Check that your server signs with a key whose public part is published in your DNS, and that nothing rewrites the message after signing.",
                "La signature DKIM du message n'a pas été vérifiée. Vérifiez que votre serveur signe avec une clé dont la partie publique est publiée dans votre DNS, et que rien ne modifie le message après la signature.",
            ),
            "auth" => pick(
                lang,
                "Your domain's DMARC policy asks receivers to refuse mail that neither SPF nor DKIM authenticates for it. Make SPF and DKIM pass, aligned with the From domain.",
                "La politique DMARC de votre domaine demande de refuser le courrier que ni SPF ni DKIM n'authentifient. Faites passer SPF et DKIM, alignés sur le domaine du From.",
            ),
            "connection" => pick(
                lang,
                "Your mail server is not set up like a mail server: ask whoever runs it for a reverse DNS (PTR) name that points back to its address, and a HELO name that is that fully qualified name.",
                "Votre serveur de messagerie n'est pas configuré comme tel : demandez à son exploitant un nom DNS inverse (PTR) qui renvoie vers son adresse, et un nom HELO qui soit ce nom complet.",
            ),
            "dnsbl" | "rbl" | "reputation" => pick(
                lang,
                "Your server's address is on a public block list (named above). Look it up on that list's site to learn why (often an infected machine or an open relay on your network), fix it, then ask for removal.",
                "L'adresse de votre serveur figure sur une liste de blocage publique (nommée ci-dessus). Consultez le site de cette liste pour savoir pourquoi (souvent une machine infectée ou un relais ouvert sur votre réseau), corrigez, puis demandez le retrait.",
            ),
            "bayes" | "html" | "mime" | "headers" | "content" => pick(
                lang,
                "The content looks like unsolicited mail. If it is not, send it again as plain text without shortened links or only-image content, or ask the recipient to allow your address.",
                "Le contenu ressemble à du courrier non sollicité. Si ce n'en est pas, renvoyez-le en texte simple, sans liens raccourcis ni contenu fait seulement d'images, ou demandez au destinataire d'autoriser votre adresse.",
            ),
            _ => continue,
        };
        push(text);
    }
    push(pick(
        lang,
        "If you think the refusal is wrong, give the recipient the reference on this page: their administrator can see the verdict and allow your address.",
        "Si vous pensez que ce refus est une erreur, donnez au destinataire la référence de cette page : son administrateur peut voir le verdict et autoriser votre adresse.",
    ));
    out
}

/// A malware finding (its weight may be 0: the policy acted on it).
pub fn is_malware(symbol: &SymbolHit) -> bool {
    matches!(symbol.group.as_str(), "antivirus" | "attachments")
}

fn pick(lang: Lang, en: &'static str, fr: &'static str) -> &'static str {
    match lang {
        Lang::En => en,
        Lang::Fr => fr,
    }
}
