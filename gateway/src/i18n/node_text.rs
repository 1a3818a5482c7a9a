//! French for the fixed phrases the node writes in English (validation reasons, trace history
//! notes). The node's wording is its contract with every client; the console translates the
//! phrases it knows and shows any other text as the node wrote it.

use super::Lang;

/// Exact phrases.
const EXACT: &[(&str, &str)] = &[
    ("is required", "est obligatoire"),
    (
        "is required (ISO 3166-1 alpha-3, e.g. FRA)",
        "est obligatoire (code ISO 3166-1 alpha-3, ex. FRA)",
    ),
    (
        "is required (at least the country)",
        "est obligatoire (au moins le pays)",
    ),
    (
        "is required (date, place, seizing agency)",
        "est obligatoire (date, lieu, service saisissant)",
    ),
    (
        "is required (seizure kind)",
        "est obligatoire (nature de la saisie)",
    ),
    (
        "is required when the marking is intact",
        "est obligatoire quand le marquage est intact",
    ),
    (
        "is required (at most 2000 characters)",
        "est obligatoire (2000 caractères au plus)",
    ),
    (
        "must be a date as YYYY-MM-DD",
        "doit être une date au format AAAA-MM-JJ",
    ),
    (
        "must be a year between 1800 and 2199",
        "doit être une année entre 1800 et 2199",
    ),
    ("must be at least 1", "doit valoir au moins 1"),
    (
        "must be between -90 and 90",
        "doit être compris entre -90 et 90",
    ),
    (
        "must be between -180 and 180",
        "doit être compris entre -180 et 180",
    ),
    (
        "contains control characters",
        "contient des caractères de contrôle",
    ),
    ("is this node's own country", "est le pays de ce nœud"),
    ("unknown value", "valeur inconnue"),
    (
        "a record needs at least one firearm, part or ammunition lot",
        "une fiche doit comporter au moins une arme, une pièce ou un lot de munitions",
    ),
    (
        "latitude and longitude go together: give both or neither",
        "latitude et longitude vont ensemble : donnez les deux ou aucune",
    ),
    (
        "acknowledged automatically",
        "accusé de réception automatique",
    ),
    (
        "acknowledged by the requested node",
        "accusé de réception par le nœud sollicité",
    ),
    ("answered by an officer", "répondue par un agent"),
    (
        "more information requested",
        "informations complémentaires demandées",
    ),
    ("answered in part", "réponse partielle"),
    ("information provided", "informations communiquées"),
    (
        "say what information is needed",
        "indiquez les informations nécessaires",
    ),
    (
        "give the information asked for",
        "donnez les informations demandées",
    ),
    (
        "the responder has not asked for more information",
        "l'État requis n'a pas demandé d'informations complémentaires",
    ),
    (
        "name at least one firearm, ammunition lot or part",
        "indiquez au moins une arme, un lot de munitions ou une pièce",
    ),
    (
        "no such trace request was sent from this node",
        "aucune demande de traçage de ce nœud ne porte cet identifiant",
    ),
    (
        "no such record at this node",
        "aucune fiche de ce nœud ne porte cet identifiant",
    ),
    (
        "Answered automatically from national seizure records",
        "Réponse automatique à partir des fiches de saisie nationales",
    ),
    ("enter a serial number", "saisissez un numéro de série"),
    ("choose a purpose", "choisissez une finalité"),
    ("state the legal basis", "indiquez la base juridique"),
    (
        "does not match the address",
        "ne correspond pas à l'adresse",
    ),
    // Audit details.
    ("lookup", "recherche"),
    ("federated lookup", "recherche fédérée"),
    ("federated query", "interrogation fédérée"),
    ("query result", "résultat d'interrogation"),
    ("lookup hit", "réponse positive à une recherche"),
    ("all peers", "tous les membres"),
    ("federated lookup", "recherche fédérée"),
    ("federated query", "interrogation fédérée"),
    ("query result", "résultat d'interrogation"),
    ("lookup hit", "réponse positive à une recherche"),
    ("all peers", "tous les membres"),
    ("query records", "interrogation des fiches"),
    (
        "recorded in the national seizure records",
        "enregistrée dans les fiches de saisie nationales",
    ),
];

/// Phrases with one variable part: (English before, English after, French before, French after).
const PATTERNS: &[(&str, &str, &str, &str)] = &[
    ("queued for ", "", "en attente d'envoi à ", ""),
    ("information from ", "", "informations reçues de ", ""),
    // Audit details.
    (
        "",
        " matching record(s) withheld: no policy rule shares them",
        "",
        " fiche(s) correspondante(s) retenue(s) : aucune règle de la politique ne les partage",
    ),
    ("lookup serial ", "", "recherche du numéro de série ", ""),
    (
        "lookup ballistic reference ",
        "",
        "recherche de la référence balistique ",
        "",
    ),
    (
        "trace request to ",
        "",
        "demande de traçage adressée à ",
        "",
    ),
    (
        "record withdrawn; ",
        " recipient(s) notified",
        "fiche retirée ; ",
        " destinataire(s) informé(s)",
    ),
    (
        "received record of ",
        " passed on",
        "fiche de ",
        " reçue par transmission ultérieure",
    ),
    (
        "delivered after ",
        " attempt(s)",
        "remis après ",
        " tentative(s)",
    ),
    ("received from ", "", "reçue de ", ""),
    ("response from ", "", "réponse de ", ""),
    ("unknown value ", "", "valeur inconnue ", ""),
    ("longer than ", " characters", "dépasse ", " caractères"),
    ("more than ", " entries", "plus de ", " éléments"),
    (
        "this node records events in ",
        " only",
        "ce nœud n'enregistre que des faits survenus en ",
        "",
    ),
    (
        "",
        " appears more than once in the file",
        "",
        " apparaît plusieurs fois dans le fichier",
    ),
    (
        "",
        " appears more than once in the batch",
        "",
        " apparaît plusieurs fois dans le lot",
    ),
    (
        "",
        " is not an ISO 3166-1 alpha-3 country code",
        "",
        " n'est pas un code pays ISO 3166-1 alpha-3",
    ),
    (
        "'",
        "' is not a whole number",
        "« ",
        " » n'est pas un nombre entier",
    ),
];

/// Phrases ending in a trace status by its proto name: (English before, French before).
const STATUS_PHRASES: &[(&str, &str)] = &[
    ("trace response received: ", "réponse de traçage reçue : "),
    ("trace response: ", "réponse de traçage : "),
];

/// `text` in `lang`: translated when it is a known node phrase, as written otherwise.
pub fn node_text(lang: Lang, text: &str) -> String {
    if lang == Lang::En {
        return text.to_owned();
    }
    for (en, fr) in STATUS_PHRASES {
        if let Some(status) = text.strip_prefix(en) {
            let label = lang.enum_label(status);
            let label = if label.is_empty() { status } else { &label };
            return format!("{fr}{label}");
        }
    }
    // "query result; redacted: case_reference, notes": the fields by their labels.
    if let Some((what, fields)) = text.split_once("; redacted: ") {
        let fields: Vec<String> = fields.split(", ").map(|f| lang.policy_field(f)).collect();
        return format!(
            "{} ; non communiqué : {}",
            node_text(lang, what),
            fields.join(", ")
        );
    }
    // "query result; redacted: case_reference, notes": the fields by their labels.
    if let Some((what, fields)) = text.split_once("; redacted: ") {
        let fields: Vec<String> = fields.split(", ").map(|f| lang.policy_field(f)).collect();
        return format!(
            "{} ; non communiqué : {}",
            node_text(lang, what),
            fields.join(", ")
        );
    }
    // "record of DEU-CUS passed on by ITA-POL": two variable parts.
    if let Some((owner, who)) = text
        .strip_prefix("record of ")
        .and_then(|r| r.split_once(" passed on by "))
    {
        return format!("fiche de {owner} transmise par {who}");
    }
    if let Some((_, fr)) = EXACT.iter().find(|(en, _)| *en == text) {
        return (*fr).to_owned();
    }
    for (pre, post, fr_pre, fr_post) in PATTERNS {
        if let Some(mid) = text.strip_prefix(pre).and_then(|r| r.strip_suffix(post))
            && !mid.is_empty()
            && (text.len() > pre.len() + post.len())
        {
            return format!("{fr_pre}{mid}{fr_post}");
        }
    }
    text.to_owned()
}

/// A policy refusal in plain words: the node's `no rule of policy version 1 shares
/// DATA_CLASS_SEIZURE with ITA for PURPOSE_TRACING` reads "No rule of policy version 1 shares
/// seizure records with ITA for tracing." (in French too). Any other text goes through
/// [`node_text`].
pub fn refusal(lang: Lang, text: &str) -> String {
    let parsed = text
        .strip_prefix("no rule of policy version ")
        .and_then(|rest| {
            let (version, rest) = rest.split_once(" shares ")?;
            let (class, rest) = rest.split_once(" with ")?;
            let (country, purpose) = rest.split_once(" for ")?;
            Some((version, class, country, purpose))
        });
    let Some((version, class, country, purpose)) = parsed else {
        return node_text(lang, text);
    };
    let label = |full: &str| {
        let l = lang.enum_label(full);
        let l = if l.is_empty() { full.to_owned() } else { l };
        match lang {
            // Mid-sentence in English: "seizure records", "tracing".
            Lang::En => lower_first(&l),
            _ => l,
        }
    };
    lang.t("policy.refusal")
        .replace("{version}", version)
        .replace("{class}", &label(class))
        .replace("{country}", country)
        .replace("{purpose}", &label(purpose))
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or(String::new(), |f| {
        f.to_lowercase().chain(c).collect::<String>()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_in_plain_words() {
        let node =
            "no rule of policy version 1 shares DATA_CLASS_SEIZURE with ITA for PURPOSE_TRACING";
        assert_eq!(
            refusal(Lang::En, node),
            "No rule of policy version 1 shares seizure records with ITA for tracing."
        );
        assert_eq!(
            refusal(Lang::Fr, node),
            "Aucune règle de la version 1 de la politique ne partage les données « Fiches de saisie » avec ITA pour la finalité « Traçage »."
        );
        assert_eq!(refusal(Lang::En, "something else"), "something else");
    }

    #[test]
    fn known_phrases_are_translated_and_others_kept() {
        assert_eq!(node_text(Lang::Fr, "is required"), "est obligatoire");
        assert_eq!(
            node_text(Lang::Fr, "queued for DEU-CUS"),
            "en attente d'envoi à DEU-CUS"
        );
        assert_eq!(
            node_text(Lang::Fr, "longer than 64 characters"),
            "dépasse 64 caractères"
        );
        assert_eq!(
            node_text(Lang::Fr, "'SYN-1' appears more than once in the file"),
            "'SYN-1' apparaît plusieurs fois dans le fichier"
        );
        assert_eq!(node_text(Lang::Fr, "something new"), "something new");
        // Audit details and trace history notes.
        assert_eq!(
            node_text(
                Lang::Fr,
                "3 matching record(s) withheld: no policy rule shares them"
            ),
            "3 fiche(s) correspondante(s) retenue(s) : aucune règle de la politique ne les partage"
        );
        assert_eq!(
            node_text(Lang::Fr, "trace request to DEU"),
            "demande de traçage adressée à DEU"
        );
        assert_eq!(
            node_text(Lang::Fr, "record of DEU-CUS passed on by ITA-POL"),
            "fiche de DEU-CUS transmise par ITA-POL"
        );
        assert_eq!(
            node_text(Lang::Fr, "delivered after 2 attempt(s)"),
            "remis après 2 tentative(s)"
        );
        assert!(
            node_text(Lang::Fr, "trace response: TRACE_STATUS_ANSWERED")
                .starts_with("réponse de traçage : "),
        );
        assert!(!node_text(Lang::Fr, "trace response: TRACE_STATUS_ANSWERED").contains("TRACE_"));
        assert_eq!(
            node_text(Lang::Fr, "lookup serial AB-1"),
            "recherche du numéro de série AB-1"
        );
        assert_eq!(
            node_text(
                Lang::Fr,
                "query result; redacted: case_reference, trafficking.route"
            ),
            "résultat d'interrogation ; non communiqué : Référence de l'affaire, Itinéraire"
        );
        assert_eq!(node_text(Lang::Fr, "all peers"), "tous les membres");
        assert_eq!(node_text(Lang::En, "is required"), "is required");
    }
}
