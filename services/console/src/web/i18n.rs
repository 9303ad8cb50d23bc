//! The console's two languages. The reader's language comes from `?lang=`, then the
//! `rempart_lang` cookie, then Accept-Language; English otherwise.

use axum::http::HeaderMap;

/// `text` with `en` replaced by `fr` where it stands as whole words.
fn replace_words(text: &str, en: &str, fr: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(en) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + en.len()..].chars().next();
        let whole = !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric);
        out.push_str(&rest[..at]);
        out.push_str(if whole { fr } else { en });
        rest = &rest[at + en.len()..];
    }
    out.push_str(rest);
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Fr,
}

impl Lang {
    pub fn from_request(query_lang: Option<&str>, headers: &HeaderMap) -> Lang {
        let pick = |s: &str| if s.trim().to_ascii_lowercase().starts_with("fr") { Some(Lang::Fr) } else { None };
        if let Some(q) = query_lang {
            return pick(q).unwrap_or(Lang::En);
        }
        if let Some(c) = super::auth::cookie(headers, "rempart_lang") {
            return pick(c).unwrap_or(Lang::En);
        }
        let accept = headers.get(axum::http::header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
        // The first language listed wins (browsers list the preferred one first).
        accept.split(',').next().and_then(pick).unwrap_or(Lang::En)
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    /// A rule's detail in this language. The scanner writes details in English around
    /// the data it found ("x.test listed in zone"): French pages swap the words (data
    /// stays as found); what only a developer reads (log-odds) is left out.
    pub fn detail(self, detail: &str) -> String {
        if self == Lang::En {
            return detail.to_string();
        }
        // Longest first, so that a phrase is not half-replaced by a shorter one.
        const PHRASES: &[(&str, &str)] = &[
            ("an attachment of a message reported as spam", "une pièce jointe d'un message signalé comme spam"),
            ("to a message reported as spam", "avec un message signalé comme spam"),
            ("bytes of hidden text in", "octets de texte caché en"),
            ("to a released message", "avec un message libéré"),
            ("is larger than its header says", "est plus grand que ne le dit son en-tête"),
            ("is nested more than", "est imbriqué sur plus de"),
            ("archives deep", "niveaux d'archives"),
            ("bytes, over the scan limit", "octets, au-delà de la limite d'analyse"),
            ("an executable", "un exécutable"),
            ("a disk image", "une image disque"),
            ("a shortcut", "un raccourci"),
            ("a script", "un script"),
            ("is really", "est en réalité"),
            ("similarity", "similarité"),
            ("(removed)", "(retiré)"),
            ("expands", "se décompresse en"),
            ("invisible characters inside words", "caractères invisibles dans des mots"),
            ("refuses our queries", "refuse nos requêtes"),
            ("spam probability", "probabilité de spam"),
            ("address is at", "l'adresse est chez"),
            ("name shows", "le nom affiche"),
            ("text shows", "le texte affiche"),
            ("link goes to", "le lien mène à"),
            ("replies to", "réponses vers"),
            ("listed in", "listé dans"),
            ("link to", "lien vers"),
            ("messages", "messages"),
            ("places", "endroits"),
            ("holds", "contient"),
            ("shows", "affiche"),
            ("over", "sur"),
            ("mean", "moyenne"),
            ("from", "depuis"),
        ];
        let kept: Vec<&str> = detail.split(", ").filter(|part| !part.contains("log-odds")).collect();
        let mut out = kept.join(", ");
        for (en, fr) in PHRASES {
            out = replace_words(&out, en, fr);
        }
        out
    }

    /// The text for `key` in this language; the key itself when none is written.
    pub fn t(self, key: &'static str) -> &'static str {
        let (en, fr) = match key {
            "title" => ("Rempart console", "Console Rempart"),
            "login" => ("Log in", "Connexion"),
            "logout" => ("Log out", "Déconnexion"),
            "email" => ("E-mail address", "Adresse e-mail"),
            "password" => ("Password", "Mot de passe"),
            "login_refused" => ("Wrong address or password.", "Adresse ou mot de passe incorrect."),
            "login_throttled" => {
                ("Too many failed attempts: try again in 15 minutes.", "Trop de tentatives échouées : réessayez dans 15 minutes.")
            }
            "quarantine" => ("Quarantine", "Quarantaine"),
            "account" => ("Account", "Compte"),
            "accounts" => ("Accounts", "Comptes"),
            "tenants" => ("Customers", "Clients"),
            "add_tenant" => ("Add a customer", "Ajouter un client"),
            "tenant_changed" => ("Saved.", "Enregistré."),
            "tenant_totp_required" => ("required", "exigé"),
            "tenant_totp_optional" => ("optional", "facultatif"),
            "tenant_require" => ("Require a second factor", "Exiger un second facteur"),
            "tenant_make_optional" => ("Make it optional", "Le rendre facultatif"),
            "add_account" => ("Add an account", "Ajouter un compte"),
            "account_added" => ("Account added.", "Compte ajouté."),
            "account_changed" => ("Saved: it applies at once.", "Enregistré : c'est appliqué immédiatement."),
            "account_deleted" => ("Account deleted, with its tokens.", "Compte supprimé, avec ses jetons."),
            "account_enabled" => ("active", "actif"),
            "account_disabled" => ("disabled", "désactivé"),
            "account_suspended" => ("suspended from sending", "envoi suspendu"),
            "account_second_factor" => ("second factor", "second facteur"),
            "enable" => ("Enable", "Activer"),
            "disable" => ("Disable", "Désactiver"),
            "set_password" => ("Set", "Définir"),
            "new_password_short" => ("new password", "nouveau mot de passe"),
            "totp_reset" => ("Remove the second factor", "Retirer le second facteur"),
            "domains" => ("Domains", "Domaines"),
            "domain" => ("Domain", "Domaine"),
            "domain_active" => ("active", "actif"),
            "domain_pending" => ("pending: waiting for the proof of control", "en attente de la preuve de contrôle"),
            "source" => ("Source", "Source"),
            "from_file" => ("configuration file (read-only)", "fichier de configuration (lecture seule)"),
            "managed_here" => ("managed here", "géré ici"),
            "route" => ("Route (the customer's server)", "Route (le serveur du client)"),
            "add_domain" => ("Add a domain", "Ajouter un domaine"),
            "save" => ("Save", "Enregistrer"),
            "tenant_optional" => ("Customer (tenant id, optional)", "Client (identifiant, facultatif)"),
            "no_domains" => ("No domain yet.", "Aucun domaine pour l'instant."),
            "domain_added" => ("Domain added: publish the records below.", "Domaine ajouté : publiez les enregistrements ci-dessous."),
            "domain_changed" => {
                ("Saved: every node applies it within seconds.", "Enregistré : chaque nœud l'applique en quelques secondes.")
            }
            "domain_verify_checked" => ("Checked.", "Vérifié."),
            "pending_explain" => (
                "Mail for this domain is deferred (4xx) until you prove that you control it: publish the TXT record _rempart-verify below, or point its MX records at the gateway. It is checked every few minutes.",
                "Le courrier pour ce domaine est différé (4xx) jusqu'à ce que vous prouviez que vous le contrôlez : publiez l'enregistrement TXT _rempart-verify ci-dessous, ou pointez ses MX vers la passerelle. La vérification a lieu toutes les quelques minutes.",
            ),
            "verify_now" => ("Check now", "Vérifier maintenant"),
            "dns_records" => ("DNS records to publish", "Enregistrements DNS à publier"),
            "type" => ("Type", "Type"),
            "name" => ("Name", "Nom"),
            "value" => ("Value", "Valeur"),
            "purpose" => ("Purpose", "Rôle"),
            "published" => ("published", "publié"),
            "missing" => ("missing", "absent"),
            "not_checked" => ("not checked", "non vérifié"),
            "dkim_keys" => ("DKIM keys", "Clés DKIM"),
            "no_keys" => ("No key kept here yet.", "Aucune clé conservée ici pour l'instant."),
            "selector" => ("Selector", "Sélecteur"),
            "algorithm" => ("Algorithm", "Algorithme"),
            "generate_key" => ("Generate a key", "Générer une clé"),
            "rotate_key" => (
                "Rotate (a new key; the current ones keep signing for 72 h, then retire)",
                "Renouveler (nouvelle clé ; les actuelles signent encore 72 h, puis sont retirées)",
            ),
            "signing" => ("signing", "signe"),
            "retiring" => ("signs until", "signe jusqu'au"),
            "key_added" => (
                "Key generated: it signs from now on; publish its TXT record.",
                "Clé générée : elle signe dès maintenant ; publiez son enregistrement TXT.",
            ),
            "key_removed" => ("Key removed: it no longer signs.", "Clé retirée : elle ne signe plus."),
            "your_account" => ("Your account", "Votre compte"),
            "role" => ("Role", "Rôle"),
            "tenant" => ("Customer", "Client"),
            "change_password" => ("Change the password", "Changer le mot de passe"),
            "current_password" => ("Current password", "Mot de passe actuel"),
            "new_password" => ("New password (10 characters or more)", "Nouveau mot de passe (10 caractères ou plus)"),
            "repeat_password" => ("The new password again", "Le nouveau mot de passe, à nouveau"),
            "passwords_differ" => ("The two new passwords differ.", "Les deux nouveaux mots de passe diffèrent."),
            "second_factor" => ("Second factor (authenticator app)", "Second facteur (application d'authentification)"),
            "totp_on" => (
                "On: logging into the console asks for a code from your app.",
                "Activé : la connexion à la console demande un code de votre application.",
            ),
            "totp_off" => ("Off: a password alone logs you in.", "Désactivé : le mot de passe seul suffit pour se connecter."),
            "totp_required" => (
                "A second factor is required for your account: set it up to use the console.",
                "Un second facteur est exigé pour votre compte : configurez-le pour utiliser la console.",
            ),
            "totp_start" => ("Set up a second factor", "Configurer un second facteur"),
            "totp_scan" => (
                "Add this account to your authenticator app (type the secret, or open the otpauth link), then enter the code it shows.",
                "Ajoutez ce compte à votre application d'authentification (saisissez la clé, ou ouvrez le lien otpauth), puis entrez le code qu'elle affiche.",
            ),
            "totp_secret" => ("Secret", "Clé secrète"),
            "code" => (
                "Code from your authenticator app (if you use one)",
                "Code de votre application d'authentification (si vous en utilisez une)",
            ),
            "totp_confirm" => ("Confirm", "Confirmer"),
            "totp_wrong" => (
                "Wrong code: check your device's clock and enter the current code.",
                "Code incorrect : vérifiez l'heure de votre appareil et entrez le code actuel.",
            ),
            "totp_enabled" => ("Second factor on.", "Second facteur activé."),
            "totp_remove" => ("Remove the second factor", "Supprimer le second facteur"),
            "totp_removed" => ("Second factor removed.", "Second facteur supprimé."),
            "code_needed" => {
                ("Enter the code from your authenticator app as well.", "Entrez aussi le code de votre application d'authentification.")
            }
            "search" => ("Search", "Rechercher"),
            "sender" => ("Sender", "Expéditeur"),
            "recipient" => ("Recipient", "Destinataire"),
            "recipients" => ("Recipients", "Destinataires"),
            "subject" => ("Subject", "Objet"),
            "date" => ("Date", "Date"),
            "since" => ("From (YYYY-MM-DD)", "Du (AAAA-MM-JJ)"),
            "until" => ("To (YYYY-MM-DD)", "Au (AAAA-MM-JJ)"),
            "min_score" => ("Minimum score", "Score minimum"),
            "score" => ("Score", "Score"),
            "outbound_score" => ("Outbound spam score (0–15)", "Score de spam sortant (0–15)"),
            "status" => ("Status", "État"),
            "tracking" => ("Tracking", "Suivi des messages"),
            "message_id" => ("Message-ID", "Message-ID"),
            "queue_id" => ("Queue ID", "N° de file"),
            "client_ip" => ("Client IP", "IP du client"),
            "any_status" => ("Any status", "Tous les états"),
            "no_tracked" => ("No message matches this search.", "Aucun message ne correspond à cette recherche."),
            "nothing_tracked" => ("No message tracked yet.", "Aucun message suivi pour l'instant."),
            "tracking_truncated" => (
                "The search stopped early: add a sender, a recipient or dates to narrow it.",
                "La recherche s'est arrêtée avant la fin : précisez un expéditeur, un destinataire ou des dates.",
            ),
            "reply" => ("Reply", "Réponse"),
            "timeline" => ("Timeline", "Historique"),
            "queue" => ("Queue", "File d'attente"),
            "with_selected" => ("With the selected messages:", "Avec les messages sélectionnés :"),
            "nothing_selected" => ("No message was selected.", "Aucun message sélectionné."),
            "bulk_done" => ("Done", "Fait"),
            "confirm_release_these" => ("Release these messages?", "Relâcher ces messages ?"),
            "confirm_spam_these" => (
                "Report these messages as spam? They are deleted and the filter learns from them.",
                "Signaler ces messages comme spam ? Ils sont supprimés et le filtre en tient compte.",
            ),
            "confirm_delete_these" => ("Delete these messages for good?", "Supprimer définitivement ces messages ?"),
            "attachments" => ("Attachments", "Pièces jointes"),
            "size" => ("Size", "Taille"),
            "cancel" => ("Cancel", "Annuler"),
            "q_hold" => ("Hold", "Suspendre"),
            "q_release" => ("Release", "Libérer"),
            "q_delete" => ("Delete", "Supprimer"),
            "q_bounce" => ("Bounce now", "Renvoyer à l'expéditeur"),
            "q_retry" => ("Retry now", "Réessayer maintenant"),
            "q_confirm_delete" => (
                "Delete this message from the queue? It will not be delivered and its sender will not be told.",
                "Supprimer ce message de la file ? Il ne sera pas remis et son expéditeur n'en sera pas informé.",
            ),
            "q_confirm_bounce" => (
                "Give up on this message now? Its sender gets a non-delivery report for every recipient not yet delivered.",
                "Abandonner ce message maintenant ? Son expéditeur reçoit un avis de non-remise pour chaque destinataire pas encore servi.",
            ),
            "q_in_delivery" => ("being delivered", "en cours de remise"),
            "q_address" => ("Sender or recipient", "Expéditeur ou destinataire"),
            "q_held_only" => ("held only", "suspendus seulement"),
            "q_empty" => ("Nothing waits in the queue.", "Rien n'attend dans la file."),
            "q_attempts" => ("Attempts", "Tentatives"),
            "q_next" => ("Next attempt", "Prochaine tentative"),
            "st_refused" => ("refused", "refusé"),
            "st_greylisted" => ("greylisted", "mis en attente (greylisting)"),
            "st_tempfail" => ("temporary failure", "échec temporaire"),
            "st_queued" => ("queued", "en file"),
            "st_deferred" => ("deferred", "différé"),
            "st_delivered" => ("delivered", "remis"),
            "st_bounced" => ("bounced", "non remis (rejeté)"),
            "st_quarantined" => ("quarantined", "en quarantaine"),
            "st_held" => ("held", "suspendu"),
            "st_discarded" => ("discarded", "supprimé"),
            "st_deleted" => ("deleted", "effacé"),
            "held" => ("held", "retenu"),
            "released" => ("released", "libéré"),
            "no_messages" => ("No message in quarantine matches.", "Aucun message en quarantaine ne correspond."),
            "newer" => ("Newer", "Plus récents"),
            "older" => ("Older", "Plus anciens"),
            "release" => ("Release", "Libérer"),
            "delete" => ("Delete", "Supprimer"),
            "report_spam" => ("Report as spam", "Signaler comme spam"),
            "released_ok" => (
                "The message was released: it is on its way to its recipients.",
                "Le message a été libéré : il part vers ses destinataires.",
            ),
            "already_released" => ("This message was already released.", "Ce message a déjà été libéré."),
            "deleted_ok" => ("The message was deleted.", "Le message a été supprimé."),
            "spam_ok" => {
                ("Thank you: the message was learned as spam and deleted.", "Merci : le message a été appris comme spam et supprimé.")
            }
            "headers" => ("Headers", "En-têtes"),
            "symbols" => ("Why it was held", "Pourquoi il a été retenu"),
            "why_refused" => ("Why it was refused", "Pourquoi il a été refusé"),
            "other_findings" => ("Other findings, each under 0.1 point, in all", "Autres constats, chacun de moins de 0,1 point, au total"),
            "malware_found" => ("What was found", "Ce qui a été trouvé"),
            "rule" => ("Rule", "Règle"),
            "weight" => ("Weight", "Poids"),
            "meaning" => ("Meaning", "Signification"),
            "preview" => (
                "Text (links are shown, never followed; no images are loaded)",
                "Texte (les liens sont affichés, jamais suivis ; aucune image n'est chargée)",
            ),
            "not_found" => ("Not found, or not yours to see.", "Introuvable, ou vous n'avez pas accès à ce message."),
            "forbidden" => ("Your role does not allow this.", "Votre rôle ne permet pas cette action."),
            "bad_csrf" => (
                "The form expired: go back, reload the page and try again.",
                "Le formulaire a expiré : revenez en arrière, rechargez la page et réessayez.",
            ),
            "why_title" => ("Why was this message refused?", "Pourquoi ce message a-t-il été refusé ?"),
            "why_held" => ("Why was this message held?", "Pourquoi ce message a-t-il été retenu ?"),
            "why_unknown" => (
                "No verdict is known under this reference: it may be mistyped, or older than 7 days.",
                "Aucun verdict n'est connu sous cette référence : elle est peut-être mal copiée, ou date de plus de 7 jours.",
            ),
            "reply_given" => ("The reply your server was given", "La réponse donnée à votre serveur"),
            "from_domain" => ("Sender's domain", "Domaine de l'expéditeur"),
            "to_domains" => ("Recipients' domains", "Domaines des destinataires"),
            "what_to_do" => ("What you can do", "Ce que vous pouvez faire"),
            "listed" => ("A list entry decided", "Une entrée de liste a décidé"),
            "reference" => ("Reference", "Référence"),
            "back" => ("Back to the list", "Retour à la liste"),
            "bad_link" => (
                "This link is not valid: it was changed, has expired, or the message is no longer yours to see.",
                "Ce lien n'est pas valide : il a été modifié, il a expiré, ou ce message ne vous est plus accessible.",
            ),
            "signed_in_as" => ("Signed in as", "Connecté en tant que"),
            "reports" => ("Reports", "Rapports"),
            "all_domains" => ("all domains", "tous les domaines"),
            "weights_bayes" => ("Filtering with Bayes and the weights fitted with it", "Filtrage avec Bayes et les poids ajustés avec lui"),
            "weights_rules" => (
                "Filtering with the rules alone until Bayes has learned enough",
                "Filtrage par les règles seules tant que Bayes n'a pas assez appris",
            ),
            "learned" => ("learned", "appris"),
            "votes_from" => ("Bayes votes from", "Bayes vote à partir de"),
            "per_domain" => ("Per domain", "Par domaine"),
            "total" => ("Total", "Total"),
            "act_accept" => ("accept", "accepté"),
            "act_add_header" => ("add_header", "marqué"),
            "act_greylist" => ("greylist", "greylisting"),
            "act_quarantine" => ("quarantine", "quarantaine"),
            "act_soft_reject" => ("soft_reject", "refus temporaire"),
            "act_reject" => ("reject", "refusé"),
            "act_discard" => ("discard", "supprimé"),
            "act_tempfail" => ("tempfail", "échec temporaire"),
            "day" => ("day", "jour"),
            "days" => ("days", "jours"),
            "messages_by_action" => ("Messages by action", "Messages par action"),
            "totals" => ("Totals", "Totaux"),
            "top_symbols" => ("Rules that hit most", "Règles les plus déclenchées"),
            "top_refused" => ("Senders refused most", "Expéditeurs les plus refusés"),
            "deliveries" => ("Deliveries to your servers", "Remises à vos serveurs"),
            "messages_held" => ("messages held", "messages retenus"),
            "outbound_usage" => ("Mail sent by your accounts (SMTP out)", "Courrier envoyé par vos comptes (SMTP sortant)"),
            "out_account" => ("Account", "Compte"),
            "out_sent" => ("Sent", "Envoyés"),
            "out_recipients" => ("Recipients", "Destinataires"),
            "out_bytes" => ("Bytes", "Octets"),
            "out_blocked" => ("Blocked (spam)", "Bloqués (spam)"),
            "out_refused" => ("Refused (sender)", "Refusés (expéditeur)"),
            "out_limited" => ("Over a limit", "Limite atteinte"),
            "out_deferred" => ("Deferred", "Différés"),
            "out_logins" => ("Logins", "Connexions"),
            "out_suspended" => ("Suspensions", "Suspensions"),
            "lists" => ("Allowed and blocked senders", "Expéditeurs autorisés et bloqués"),
            "lists_help" => (
                "Mail from an allowed sender is delivered without scoring; mail from a blocked sender is refused. An entry is an address or a domain (its subdomains included).",
                "Le courrier d'un expéditeur autorisé est distribué sans calcul de score ; celui d'un expéditeur bloqué est refusé. Une entrée est une adresse ou un domaine (sous-domaines compris).",
            ),
            "list_owner" => ("Lists of (address or domain)", "Listes de (adresse ou domaine)"),
            "show" => ("Show", "Afficher"),
            "no_entries" => ("No entry.", "Aucune entrée."),
            "list" => ("List", "Liste"),
            "added_by" => ("Added by", "Ajouté par"),
            "remove" => ("Remove", "Retirer"),
            "add" => ("Add", "Ajouter"),
            "sender_or_domain" => ("Sender address or domain", "Adresse ou domaine de l'expéditeur"),
            "allowed" => ("allowed", "autorisé"),
            "blocked" => ("blocked", "bloqué"),
            "allow_sender" => ("Always allow this sender", "Toujours autoriser cet expéditeur"),
            "block_sender" => ("Block this sender", "Bloquer cet expéditeur"),
            "list_changed" => (
                "The list was changed; it applies from the next message.",
                "La liste a été modifiée ; elle s'applique dès le prochain message.",
            ),
            "no_sender_to_list" => (
                "This message has no sender address (it is a bounce): there is nothing to list.",
                "Ce message n'a pas d'adresse d'expéditeur (c'est un rapport de non-remise) : rien à inscrire.",
            ),
            _ => (key, key),
        };
        match self {
            Lang::En => en,
            Lang::Fr => fr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_details_read_in_french_without_log_odds() {
        assert_eq!(Lang::Fr.detail("spam probability 0.999000, mean log-odds 6.91"), "probabilité de spam 0.999000");
        assert_eq!(Lang::Fr.detail("log-odds 2.31"), "", "internal only: nothing shown");
        assert_eq!(Lang::Fr.detail("similarity 0.88 to a message reported as spam"), "similarité 0.88 avec un message signalé comme spam");
        assert_eq!(Lang::Fr.detail("invoice.pdf is really an executable (exe)"), "invoice.pdf est en réalité un exécutable (exe)");
        assert_eq!(Lang::Fr.detail("tool.exe (removed)"), "tool.exe (retiré)");
        assert_eq!(Lang::Fr.detail("promo.test listed in uribl.test"), "promo.test listé dans uribl.test");
        assert_eq!(
            Lang::Fr.detail("name shows bank.test, address is at overmean.test"),
            "le nom affiche bank.test, l'adresse est chez overmean.test"
        );
        assert_eq!(Lang::En.detail("a listed in b"), "a listed in b");
    }
}
