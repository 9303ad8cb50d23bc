//! The scanner engine: the symbol registry, the check stages, composites and the
//! policies, put together by [`Scanner`] (rspamd's symcache + composites + scan
//! result). The service parts (gRPC, queued scans, diagnostics) are in `service`.

mod autolearn;
pub mod composite;
pub mod lists;
mod malware;
mod marking;
pub mod policy;
pub mod registry;
pub mod stages;

pub use marking::spam_headers;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use rempart_model::{Config, Edits, Refusal, SessionFacts, Verdict};
use rempart_state::SharedState;
use rempart_state::awl::AwlEntry;
use rempart_state::sender_lists;

use crate::checks::{self, Context, FREEMAIL, Findings};
use crate::message::Analysis;
use crate::service::diagnose;
use crate::symbols::bayes_bands;
use crate::{ScannerError, antivirus, dns, tokens};
use policy::{Listed, Policies, listed};
use registry::{Registry, round_points};

/// What the scanner is asked about.
pub struct ScanInput<'a> {
    pub facts: &'a SessionFacts,
    pub return_path: &'a str,
    pub recipients: &'a [String],
    pub message: &'a [u8],
}

pub struct Scanner {
    id: String,
    hostname: String,
    registry: Registry,
    policies: Policies,
    freemail: HashSet<String>,
    brands: Vec<checks::impersonation::Brand>,
    /// `[outbound] block`: submitted mail scoring this or more is refused.
    outbound_block: f64,
    dns: dns::Dns,
    dns_lists: Vec<rempart_model::config::DnsListConfig>,
    uri_lists: Vec<rempart_model::config::DnsListConfig>,
    /// AWL and Bayes; `None` when the scanner runs without shared state.
    state: Option<Arc<SharedState>>,
    /// The malware engines (`[antivirus]`), if any.
    antivirus: Option<antivirus::Engines>,
    /// Learning on its own (`[bayes] autolearn`), when Bayes is on.
    autolearn: Option<autolearn::Autolearn>,
}

/// What the DNS-based checks found (nothing when offline).
#[derive(Debug, Default)]
pub struct NetworkFindings {
    pub(crate) findings: Findings,
    offline: bool,
    elapsed_us: u64,
    /// The Authentication-Results header (name and CRLF included).
    authentication_results: Option<String>,
    /// The sender's history (AWL), looked up with the DNS checks.
    awl: Option<AwlEntry>,
    /// What each recipient's run-time lists (in the store) say, in recipient order.
    sender_lists: Vec<Option<sender_lists::Decision>>,
    /// What the malware engines answered (they run even with the DNS offline).
    antivirus: Vec<antivirus::Answer>,
}

/// The engines' answers as symbols (an external check's score is its weight).
fn add_antivirus_hits(answers: &[antivirus::Answer], findings: &mut Findings) {
    for answer in answers {
        if let Some((symbol, detail, _)) = answer.symbol() {
            let weight = match &answer.outcome {
                antivirus::Outcome::Said(antivirus::Verdict::Score(points)) => Some(*points),
                _ => None,
            };
            findings.hit_weighted(&symbol, Some(detail), weight);
        }
    }
}

/// Link domains looked up in URI lists, at most (SpamAssassin's default too).
const MAX_URI_DOMAINS: usize = 20;

impl Scanner {
    /// The registry and the policies from the configuration (which they check), and
    /// the `[dns]` resolver.
    pub fn new(config: &Config) -> Result<Scanner, ScannerError> {
        let mut freemail: HashSet<String> = FREEMAIL.iter().map(|s| s.to_string()).collect();
        freemail.extend(config.scanner.freemail_domains.iter().map(|d| d.to_ascii_lowercase()));
        Ok(Scanner {
            id: format!("{}/{}", config.smtp.hostname, std::process::id()),
            hostname: config.smtp.hostname.clone(),
            registry: Registry::from_config(&config.scanner)?,
            policies: Policies::from_config(config)?,
            freemail,
            brands: checks::impersonation::Brand::list(&config.scanner.brands),
            outbound_block: config.outbound.block,
            dns: dns::Dns::new(&config.dns)?,
            dns_lists: config.scanner.dns_lists.clone(),
            uri_lists: config.scanner.uri_lists.clone(),
            state: None,
            antivirus: antivirus::Engines::from_config(&config.antivirus)?,
            autolearn: autolearn::Autolearn::from_config(&config.bayes),
        })
    }

    /// Uses `state` for the AWL and Bayes.
    pub fn with_state(mut self, state: Arc<SharedState>) -> Self {
        self.state = Some(state);
        self
    }

    /// The weight this scanner gives `name` when Bayes voted, or did not.
    pub fn symbol_weight(&self, name: &str, bayes_voted: bool) -> f64 {
        self.registry.weight(name, bayes_voted)
    }

    pub fn policies(&self) -> &Policies {
        &self.policies
    }

    /// The SMTP refusal for a verdict that refuses (see [`Policies::refusal`]).
    pub fn refusal(&self, queue_id: &str, verdict: &Verdict) -> Option<Refusal> {
        self.policies.refusal(queue_id, verdict)
    }

    /// `check-sender`'s findings, with this scanner's resolver and DNS lists.
    pub async fn check_sender(&self, request: &diagnose::Request<'_>) -> Option<Vec<diagnose::Finding>> {
        diagnose::check_sender(&self.dns, &self.dns_lists, request).await
    }

    /// The `[dns]` resolver (`None` when offline).
    pub fn resolver(&self) -> Option<mail_auth::hickory_resolver::TokioResolver> {
        self.dns.authenticator().map(|a| a.resolver().clone())
    }

    /// The whole scan: DNS-based checks, then everything else.
    pub async fn scan(&self, input: &ScanInput<'_>) -> Verdict {
        let network = self.network_findings(input).await;
        self.evaluate(input, network)
    }

    /// The checks that wait on DNS. Cheap in CPU: run them on the async threads, and
    /// `evaluate` (CPU-bound) on a blocking thread.
    pub async fn network_findings(&self, input: &ScanInput<'_>) -> NetworkFindings {
        // One quick parse for what the lookups need: the fingerprint (the memory of
        // campaigns) and the link domains (URI lists).
        let (fingerprint, link_domains) = if self.state.is_some() || !self.uri_lists.is_empty() {
            let analysis = Analysis::new(input.message);
            let fingerprint = self.state.as_ref().map(|_| rempart_classifier::fuzzy::fingerprint(&analysis));
            (fingerprint, (!self.uri_lists.is_empty()).then(|| analysis.link_domains(MAX_URI_DOMAINS)))
        } else {
            (None, None)
        };
        let (awl, sender_lists, antivirus, fuzzy) = tokio::join!(
            self.awl_lookup(input),
            self.sender_lists_lookup(input),
            self.antivirus_answers(input.message),
            self.fuzzy_recall(fingerprint.as_ref())
        );
        let mut findings = Findings::default();
        if let Some((symbol, detail, weight)) = fuzzy {
            findings.hit_weighted(symbol, Some(detail), Some(weight));
        }
        if self.dns.is_offline() {
            return NetworkFindings { offline: true, awl, sender_lists, antivirus, findings, ..Default::default() };
        }
        let started = Instant::now();
        let authentication_results = checks::auth::run(&self.dns, input, &self.hostname, &mut findings).await;
        checks::sender::run(&self.dns, input, &mut findings).await;
        checks::dnslists::run(&self.dns, &self.dns_lists, input.facts.client_ip(), &mut findings).await;
        if let Some(domains) = &link_domains {
            checks::dnslists::run_uri(&self.dns, &self.uri_lists, domains, &mut findings).await;
        }
        NetworkFindings {
            findings,
            offline: false,
            elapsed_us: started.elapsed().as_micros() as u64,
            authentication_results,
            awl,
            sender_lists,
            antivirus,
        }
    }

    /// What the memory of campaigns says (`FUZZY_DENIED` or `FUZZY_WHITE`, weighed by
    /// the similarity); a store failure is logged and the message scored without it.
    async fn fuzzy_recall(&self, fingerprint: Option<&rempart_classifier::fuzzy::Fingerprint>) -> Option<(&'static str, String, f64)> {
        use rempart_state::fuzzy::{Recall, recall};
        let (state, fp) = (self.state.as_ref()?, fingerprint?);
        let found = match recall(&*state.store, fp).await {
            Ok(found) => found?,
            Err(e) => {
                tracing::warn!(error = %e, "fuzzy lookup failed; scoring without the memory of campaigns");
                return None;
            }
        };
        let (symbol, similarity, detail) = match found {
            Recall::Spam { similarity, attachment: true } => {
                ("FUZZY_DENIED", similarity, "an attachment of a message reported as spam".to_string())
            }
            Recall::Spam { similarity, .. } => {
                ("FUZZY_DENIED", similarity, format!("similarity {similarity:.2} to a message reported as spam"))
            }
            Recall::Ham { similarity } => ("FUZZY_WHITE", similarity, format!("similarity {similarity:.2} to a released message")),
        };
        Some((symbol, detail, self.registry.weight(symbol, false) * similarity))
    }

    /// What the malware engines say about the message (nothing without engines).
    pub async fn antivirus_answers(&self, message: &[u8]) -> Vec<antivirus::Answer> {
        match &self.antivirus {
            Some(engines) => engines.scan(message).await,
            None => Vec::new(),
        }
    }

    /// Everything that needs no network: parses the message, runs the local stages,
    /// the classifier and the composites, adds the network findings, weighs, pulls
    /// the score towards the sender's history, and applies the policies.
    pub fn evaluate(&self, input: &ScanInput<'_>, network: NetworkFindings) -> Verdict {
        let started = Instant::now();
        let mut analysis = Analysis::new(input.message);
        analysis.inspect_attachments();
        let policies = self.policies.for_recipients(input.recipients);
        let ip: Option<IpAddr> = input.facts.client_ip();
        let header_from = analysis.from_addresses();
        let listed: Vec<_> = policies
            .iter()
            .map(|(domain, p)| {
                listed(p, ip, input.return_path, &header_from)
                    .or_else(|| Listed::from_store(domain, input.recipients, &network.sender_lists))
            })
            .collect();
        // Listed for every domain: the lists decide, nothing is scored.
        let scored = listed.iter().any(Option::is_none);

        let mut findings = network.findings;
        add_antivirus_hits(&network.antivirus, &mut findings);
        if scored {
            let ctx = self.context(input, &analysis);
            for stage in stages::LOCAL_STAGES {
                (stage.run)(&ctx, &mut findings);
            }
            self.bayes(&analysis, &mut findings);
            self.registry.add_composites(&mut findings);
        }
        // Malware is judged whatever the lists say (an allowed sender's virus is a virus).
        let configs: Vec<_> = policies.iter().map(|(_, p)| p.config()).collect();
        let decision = Self::judge_malware(&analysis, &network.antivirus, &configs, &mut findings, false);
        let mut symbols = self.registry.weigh(findings);
        let mut score = round_points(symbols.iter().map(|s| s.score).sum::<f64>());
        if let (Some(entry), Some(awl), true) = (&network.awl, self.state.as_ref().and_then(|s| s.awl.as_ref()), scored) {
            let pull = round_points(awl.adjustment(entry, score));
            if pull != 0.0 {
                let detail = Some(format!("mean {:.2} over {} messages", entry.mean, entry.count));
                symbols.push(self.registry.hit("AWL", pull, detail));
                score = round_points(score + pull);
            }
        }
        let (action, listed_reason) = Policies::decide(&policies, listed, score);
        let mut verdict = Verdict {
            score,
            action,
            symbols,
            listed: listed_reason,
            scanner_id: self.id.clone(),
            elapsed_us: started.elapsed().as_micros() as u64 + network.elapsed_us,
            offline: network.offline,
            edits: Edits::default(),
            refusal: None,
            malware: None,
        };
        self.apply_malware(&mut verdict, &decision);
        verdict.edits = self.policies.edits(input.recipients, &verdict, network.authentication_results);
        self.malware_edits(&mut verdict.edits, &analysis, &decision);
        verdict
    }

    /// What `policies` decide about the message's malware, before weighing: what is
    /// stripped is not delivered, so its findings weigh nothing. Outbound, holding is
    /// blocking (the sender is told and the message kept).
    fn judge_malware(
        analysis: &Analysis<'_>,
        antivirus: &[antivirus::Answer],
        policies: &[&rempart_model::config::PolicyConfig],
        findings: &mut Findings,
        outbound: bool,
    ) -> malware::Decision {
        let mut decision = malware::decide(policies, &malware::threats(&analysis.attachments, antivirus));
        if outbound {
            decision.action =
                decision.action.map(|a| if a == rempart_model::Action::Quarantine { rempart_model::Action::Reject } else { a });
        }
        findings.discount_stripped(&decision.stripped_parts());
        decision
    }

    /// The malware decision's action, when harsher than the score's, and its reason.
    fn apply_malware(&self, verdict: &mut Verdict, decision: &malware::Decision) {
        if let Some(action) = decision.action
            && action >= verdict.action
        {
            verdict.action = action;
            verdict.malware = decision.reason.clone();
        }
    }

    /// Stripped parts and `X-Rempart-Malware` headers.
    fn malware_edits(&self, edits: &mut Edits, analysis: &Analysis<'_>, decision: &malware::Decision) {
        edits.strip = malware::stripped_parts(&analysis.attachments, &decision.strip, &self.policies.explain_url("{queue_id}"));
        for what in &decision.headers {
            let value: String = what.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
            edits.add_headers.push(format!("X-Rempart-Malware: {value}\r\n"));
        }
    }

    /// The verdict on mail a customer's account submitted: the content rules only (the
    /// DNS checks judge the client, which is the customer; Bayes, the AWL and the
    /// recipients' lists are learned from inbound mail), weighed with the weights for
    /// when Bayes does not vote; `Reject` at `[outbound] block` or more, else `Accept`.
    /// Malware (`antivirus`: the engines' answers) is judged by the default policy:
    /// whatever it would not deliver untouched is blocked (held, the account told),
    /// stripped parts are stripped, an engine down defers.
    pub fn evaluate_outbound(&self, input: &ScanInput<'_>, antivirus: &[antivirus::Answer]) -> Verdict {
        let started = Instant::now();
        let mut analysis = Analysis::new(input.message);
        analysis.inspect_attachments();
        let ctx = self.context(input, &analysis);
        let mut findings = Findings::default();
        add_antivirus_hits(antivirus, &mut findings);
        for stage in stages::LOCAL_STAGES.iter().filter(|s| s.name != "connection") {
            (stage.run)(&ctx, &mut findings);
        }
        self.registry.add_composites(&mut findings);
        let decision = Self::judge_malware(&analysis, antivirus, &[self.policies.default_config()], &mut findings, true);
        let symbols = self.registry.weigh(findings);
        let score = round_points(symbols.iter().map(|s| s.score).sum::<f64>());
        let mut verdict = Verdict {
            score,
            action: if score >= self.outbound_block { rempart_model::Action::Reject } else { rempart_model::Action::Accept },
            symbols,
            listed: None,
            scanner_id: self.id.clone(),
            elapsed_us: started.elapsed().as_micros() as u64,
            offline: false,
            edits: Edits::default(),
            refusal: None,
            malware: None,
        };
        self.apply_malware(&mut verdict, &decision);
        self.malware_edits(&mut verdict.edits, &analysis, &decision);
        verdict
    }

    /// What the local checks see of `input`.
    fn context<'a>(&'a self, input: &'a ScanInput<'_>, analysis: &'a Analysis<'a>) -> Context<'a> {
        Context {
            facts: input.facts,
            analysis,
            hostname: &self.hostname,
            freemail: &self.freemail,
            recipients: input.recipients,
            brands: &self.brands,
        }
    }

    /// `[outbound] block`.
    pub fn outbound_block(&self) -> f64 {
        self.outbound_block
    }

    /// The Bayes symbol for the message, if the classifier votes.
    fn bayes(&self, analysis: &Analysis<'_>, findings: &mut Findings) {
        let Some(state) = &self.state else { return };
        let Some(bayes) = &state.bayes else { return };
        let model = bayes.model();
        rempart_telemetry::metrics().bayes_voting(model.ready(state.bayes_min_learned));
        let Some(vote) = model.vote(&tokens::tokens(analysis), state.bayes_min_learned) else { return };
        let per_unit = self.registry.weight("BAYES_LOGODDS", true);
        let per_linear_unit = self.registry.weight("LINEAR_LOGODDS", true);
        let detail = format!("spam probability {:.6}, mean log-odds {:.2}", vote.probability, vote.mean_logodds);
        for (i, band) in bayes_bands(vote.probability).into_iter().enumerate() {
            // The band's weight, and on the band itself the Bayes log-odds' share.
            let continuous = per_unit * vote.mean_logodds;
            let weight = (i == 0 && continuous != 0.0).then(|| self.registry.weight(band, true) + continuous);
            findings.hit_weighted(band, Some(detail.clone()), weight);
        }
        // The token regression is a finding of its own, with what it added.
        if let Some(logit) = vote.linear.filter(|_| per_linear_unit != 0.0) {
            findings.hit_weighted("TOKEN_REGRESSION", Some(format!("log-odds {logit:.2}")), Some(per_linear_unit * logit));
        }
    }

    /// The verdict without the network (as with `[dns] offline`), computed on this
    /// thread: for `rempart tune` and benchmarks, which score thousands of files.
    pub fn evaluate_offline(&self, input: &ScanInput<'_>) -> Verdict {
        self.evaluate(input, NetworkFindings { offline: true, ..Default::default() })
    }

    /// The AWL's identity of a message: the return path and the client address.
    fn awl_identity<'a>(input: &'a ScanInput<'_>) -> Option<(&'a str, IpAddr)> {
        let ip = input.facts.client_ip()?;
        (!input.return_path.is_empty()).then_some((input.return_path, ip))
    }

    /// The recipients' run-time allow and block lists; a store failure is logged and the
    /// message scored as if they were empty.
    async fn sender_lists_lookup(&self, input: &ScanInput<'_>) -> Vec<Option<sender_lists::Decision>> {
        let Some(state) = &self.state else { return Vec::new() };
        let header_from = match mail_parser::MessageParser::new().parse_headers(input.message) {
            Some(headers) => headers.from().map(|f| f.iter().filter_map(|a| a.address()).map(str::to_string).collect()).unwrap_or_default(),
            None => Vec::new(),
        };
        match sender_lists::decide(&*state.store, input.recipients, input.return_path, &header_from).await {
            Ok(decisions) => decisions,
            Err(e) => {
                tracing::warn!(error = %e, "allow/block list lookup failed; scoring without the run-time lists");
                Vec::new()
            }
        }
    }

    async fn awl_lookup(&self, input: &ScanInput<'_>) -> Option<AwlEntry> {
        let awl = self.state.as_ref()?.awl.as_ref()?;
        let (sender, ip) = Self::awl_identity(input)?;
        match awl.lookup(sender, ip).await {
            Ok(entry) => entry,
            Err(e) => {
                tracing::warn!(error = %e, "AWL lookup failed; scoring without it");
                None
            }
        }
    }

    /// The class to learn the message as on its own, if its verdict is clear enough
    /// (`engine::autolearn`); `None` without Bayes.
    pub fn autolearn_class(&self, verdict: &Verdict) -> Option<rempart_classifier::bayes::Class> {
        self.state.as_ref()?.bayes.as_ref()?;
        self.autolearn?.class_of(verdict)
    }

    /// Learns the message as `class` within the sender's daily cap; true when learned.
    pub async fn autolearn(&self, return_path: &str, message: &[u8], class: rempart_classifier::bayes::Class) -> bool {
        match (&self.state, &self.autolearn) {
            (Some(state), Some(autolearn)) => autolearn.learn(state, return_path, message, class).await,
            _ => false,
        }
    }

    /// After the verdict: adds the message's score (without the AWL's own pull) to
    /// the sender's history. Allow- and block-listed mail was not scored: skipped.
    pub async fn record(&self, return_path: &str, facts: &SessionFacts, verdict: &Verdict) {
        let Some(awl) = self.state.as_ref().and_then(|s| s.awl.as_ref()) else { return };
        let (Some(ip), false) = (facts.client_ip(), return_path.is_empty()) else { return };
        if verdict.listed.is_some() {
            return;
        }
        let pull: f64 = verdict.symbols.iter().filter(|s| s.name == "AWL").map(|s| s.score).sum();
        if let Err(e) = awl.record(return_path, ip, verdict.score - pull).await {
            tracing::warn!(error = %e, "AWL update failed");
        }
    }
}
