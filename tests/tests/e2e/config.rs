//! The configuration file and the `config check` command: the example stays complete,
//! errors name the file, line and field, and exit codes follow the CLI conventions.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use rempart_model::{Config, DomainConfig};
use rempart_tests::gateway::{rempart_bin, run_rempart};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/rempart.example.toml")
}

fn rempart(args: &[&str], cwd: &Path, stdin: Option<&str>) -> Output {
    run_rempart(args, cwd, stdin.map(str::as_bytes))
}

/// Every key of a configuration with every optional field set, as `table.key`.
fn all_config_keys() -> BTreeSet<String> {
    let mut config = Config::default();
    config.tls.cert = Some("c.pem".into());
    config.tls.key = Some("k.pem".into());
    config.smtp.max_data_line = Some(1000);
    config.smtp.postmaster = Some("postmaster@example.com".into());
    config.domains.push(DomainConfig {
        name: "example.com".into(),
        route: "smtp://h".parse().unwrap(),
        route_tls: rempart_model::RouteTls::Verify,
        route_ca_file: Some("ca.pem".into()),
        recipients: vec!["a".into()],
        recipients_file: Some("f".into()),
        recipient_delimiter: "+".into(),
        recipient_source: rempart_model::config::RecipientSource::Ldap,
        ldap: Some(rempart_model::config::LdapConfig {
            url: "ldaps://dc".into(),
            starttls: false,
            ca_file: Some("ca.pem".into()),
            bind_dn: Some("cn=x".into()),
            bind_password_file: Some("pw".into()),
            base: "dc=x".into(),
            filter: rempart_model::config::default_ldap_filter(),
            timeout: rempart_model::HumanDuration::secs(5),
            connections: 2,
        }),
        callout: Some(rempart_model::config::CalloutConfig {
            probe_sender: "p@x".into(),
            positive_ttl: rempart_model::HumanDuration::secs(1),
            negative_ttl: rempart_model::HumanDuration::secs(1),
            timeout: rempart_model::HumanDuration::secs(1),
        }),
        recipient_fail_open: true,
        bounces: rempart_model::config::Bounces::Verified,
        max_message_size: Some(1),
        policy: rempart_model::config::PolicyOverride {
            reject: Some(1.0),
            add_header: Some(1.0),
            greylist: Some(1.0),
            quarantine: Some(1.0),
            soft_reject: Some(1.0),
            discard: Some(1.0),
            subject_tag: Some("x".into()),
            allow: vec!["a".into()],
            block: vec!["b".into()],
            virus: Some(rempart_model::config::MalwareAction::Quarantine),
            antivirus_failure: Some(rempart_model::config::EngineFailure::Accept),
            attachments: [("office_macro".to_string(), rempart_model::config::MalwareAction::Strip)].into(),
        },
        greylisting: false,
        scanner_fallback: rempart_model::ScannerFallback::Queue,
        dkim: vec![rempart_model::config::DkimKeyConfig { selector: "s".into(), key_file: "k.pem".into() }],
        digest_every_recipient: false,
        pending: None,
    });
    config.state.path = Some("state.redb".into());
    config.state.fdb_cluster_file = Some("fdb.cluster".into());
    config.state.nats_credentials_file = Some("nats.creds".into());
    config.state.nats_ca_file = Some("nats-ca.pem".into());
    config.state.secret_file = Some("secret.key".into());
    config.bus.nats_credentials_file = Some("nats.creds".into());
    config.bus.nats_ca_file = Some("nats-ca.pem".into());
    config.greylist.skip_networks.push("192.0.2.0/24".into());
    config.scanner.weights.insert("MISSING_MID".into(), 0.5);
    config.scanner.group_limits.insert("headers".into(), 6.0);
    config.scanner.freemail_domains.push("mail.example".into());
    config.scanner.composites.push(rempart_model::config::CompositeConfig {
        name: "C".into(),
        expression: "A".into(),
        weight: 1.0,
        description: "d".into(),
        description_fr: Some("d".into()),
    });
    config.scanner.dns_lists.push(rempart_model::config::DnsListConfig {
        zone: "z".into(),
        symbol: "S".into(),
        weight: 1.0,
        returns: Default::default(),
        blocked: vec!["127.255.255.254".into()],
        description: "d".into(),
        description_fr: Some("d".into()),
    });
    config.scanner.uri_lists.push(config.scanner.dns_lists[0].clone());
    config.scanner.brands.push(rempart_model::config::BrandConfig { name: "B".into(), domains: vec!["b.example".into()] });
    let p = &mut config.policy;
    (p.greylist, p.quarantine, p.soft_reject, p.discard, p.subject_tag) = (Some(1.0), Some(1.0), Some(1.0), Some(1.0), Some("x".into()));
    (p.allow, p.block) = (vec!["a".into()], vec!["b".into()]);
    config.antivirus.clamd = Some("unix:/run/clamav/clamd.ctl".into());
    config.antivirus.icap = Some("icap://127.0.0.1:1344/avscan".into());
    config.antivirus.external = vec!["/usr/local/bin/check".into()];
    let value = toml::Value::try_from(&config).unwrap();
    let mut keys = BTreeSet::new();
    collect(&value, "", &mut keys);
    keys
}

fn collect(value: &toml::Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                if matches!(v, toml::Value::Table(_)) || matches!(v, toml::Value::Array(a) if a.first().is_some_and(|x| x.is_table())) {
                    collect(v, &path, out);
                } else {
                    out.insert(path);
                }
            }
        }
        toml::Value::Array(items) => items.iter().for_each(|v| collect(v, prefix, out)),
        _ => {}
    }
}

#[test]
fn example_config_is_valid_and_names_every_field() {
    let out = rempart(&["config", "check", example().to_str().unwrap()], Path::new("."), None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(example()).unwrap();
    let mut table = String::new();
    let mut seen = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim_start_matches('#').trim();
        if let Some(header) = line.strip_prefix('[').map(|h| h.trim_matches(|c| c == '[' || c == ']'))
            && !line.contains('=')
        {
            table = header.to_string();
            continue;
        }
        if let Some((key, _)) = line.split_once(" = ")
            && !key.contains(' ')
        {
            seen.insert(format!("{table}.{key}"));
        }
    }
    let missing: Vec<_> = all_config_keys().into_iter().filter(|k| !seen.contains(k)).collect();
    assert!(missing.is_empty(), "fields missing from deploy/rempart.example.toml: {missing:?}");
}

#[test]
fn errors_name_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "[smtp]\nhostname = \"gw\"\n\n[[domain]]\nname = \"example.com\"\nroute = \"http://wrong\"\n",
    )
    .unwrap();
    // A valid file: its bands per domain, the harshest action reached applying (a low
    // quarantine threshold wins over the inherited greylist and add_header above it).
    std::fs::write(
        dir.path().join("bands.toml"),
        "[[domain]]\nname = \"example.com\"\nroute = \"smtp://h\"\n[domain.policy]\nquarantine = 5.0\n",
    )
    .unwrap();
    let out = rempart(&["config", "check", "bands.toml"], dir.path(), None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("example.com  below 5.0 accept · 5.0 quarantine · 7.5 reject"), "{text}");
    assert!(text.contains("[policy]     below 6.0 accept · 6.0 greylist · 6.5 add_header · 7.5 reject"), "{text}");

    let out = rempart(&["config", "check", "bad.toml"], dir.path(), None);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:6: ") && err.contains("invalid route"), "{err}");
    assert!(out.stdout.is_empty());

    std::fs::write(
        dir.path().join("dup.toml"),
        "[[domain]]\nname = \"a.example\"\nroute = \"smtp://h\"\n\n[[domain]]\nname = \"a.example\"\nroute = \"smtp://h\"\n",
    )
    .unwrap();
    let out = rempart(&["config", "check", "--json", "dup.toml"], dir.path(), None);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document on stdout");
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["line"], 6);
    assert_eq!(doc["field"], "domain[1].name");

    std::fs::write(
        dir.path().join("scan.toml"),
        "[scanner.weights]\nMISSING_MID = 1.0\nNOT_A_SYMBOL = 2.0\n\n[[scanner.composite]]\nname = \"X\"\nexpression = \"MISSING_MID &\"\nweight = 1.0\ndescription = \"x\"\n",
    )
    .unwrap();
    let out = rempart(&["config", "check", "scan.toml"], dir.path(), None);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("scan.toml:3: scanner.weights.NOT_A_SYMBOL: no such symbol"), "{err}");
    std::fs::write(
        dir.path().join("expr.toml"),
        "[[scanner.composite]]\nname = \"X\"\nexpression = \"MISSING_MID &\"\nweight = 1.0\ndescription = \"x\"\n",
    )
    .unwrap();
    let err = String::from_utf8_lossy(&rempart(&["config", "check", "expr.toml"], dir.path(), None).stderr).to_string();
    assert!(err.contains("expr.toml:3: scanner.composite[0].expression: expression ends too early"), "{err}");
    std::fs::write(
        dir.path().join("list.toml"),
        "[[domain]]\nname = \"a.example\"\nroute = \"smtp://h\"\n[domain.policy]\nreject = 9.0\nblock = [\"not a thing\"]\n",
    )
    .unwrap();
    let err = String::from_utf8_lossy(&rempart(&["config", "check", "list.toml"], dir.path(), None).stderr).to_string();
    assert!(err.contains("list.toml:6: domain[0].policy.block: "), "{err}");

    let out = rempart(&["config", "check", "missing.toml"], dir.path(), None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));

    // `serve` refuses a bad configuration the same way instead of starting.
    let out = rempart(&["serve", "--config", "bad.toml"], dir.path(), None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.toml:6: "));
}

#[test]
fn stdin_default_file_json_and_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = "[[domain]]\nname = \"example.com\"\nroute = \"smtp://127.0.0.1:25\"\n";
    let out = rempart(&["config", "check", "--json", "-"], dir.path(), Some(good));
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((doc["valid"].as_bool(), doc["domains"].as_u64()), (Some(true), Some(1)));

    // ./rempart.toml is the default, and --config works on every subcommand.
    std::fs::write(dir.path().join("rempart.toml"), good).unwrap();
    let out = rempart(&["config", "check"], dir.path(), None);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("rempart.toml: OK (1 domain"));
    std::fs::write(dir.path().join("other.toml"), "[smtp]\nmax_errors = 0\n").unwrap();
    let out = rempart(&["--config", "other.toml", "config", "check"], dir.path(), None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("other.toml:2: smtp.max_errors"));

    let out = rempart(&["config", "frobnicate"], dir.path(), None);
    assert_eq!(out.status.code(), Some(2));
    let out = rempart(&["serve", "--no-such-flag"], dir.path(), None);
    assert_eq!(out.status.code(), Some(2));
    let help = rempart(&["--help"], dir.path(), None);
    assert!(String::from_utf8_lossy(&help.stdout).contains("Exit status: 0 success; 1"));
}

/// `rempart serve` with no configuration: 127.0.0.1:2525, a local data directory, and
/// no domain, so it relays for nobody.
#[test]
fn serve_without_config_uses_safe_defaults() {
    if std::net::TcpListener::bind("127.0.0.1:2525").is_err() {
        eprintln!("skipped: 127.0.0.1:2525 is in use on this machine");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(rempart_bin()).arg("serve").current_dir(dir.path()).stderr(Stdio::piped()).spawn().unwrap();
    let up = rempart_tests::wait_until(std::time::Duration::from_secs(20), || std::net::TcpStream::connect("127.0.0.1:2525").is_ok());
    let outcome = std::panic::catch_unwind(|| {
        assert!(up, "nothing listening on 127.0.0.1:2525");
        let mut c = rempart_tests::SmtpClient::connect("127.0.0.1:2525");
        c.ehlo();
        assert_eq!(c.cmd("MAIL FROM:<a@sender.test>").code, 250);
        let r = c.cmd("RCPT TO:<someone@example.com>");
        assert_eq!((r.code, r.enhanced().as_deref()), (550, Some("5.7.1")), "{r:?}");
        assert!(dir.path().join("rempart-data/queue.redb").exists());
    });
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(outcome.is_ok(), "{log}");
    assert!(log.contains("no [[domain]] configured"), "{log}");
}

/// Every configuration shipped for deployment (docker compose, Kubernetes) is valid.
/// The certificate paths are those of the mounted Secret: a test certificate stands in.
#[test]
fn deployment_configs_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = rempart_tests::self_signed_cert(dir.path());
    let files = [
        "deploy/compose/edge.toml",
        "deploy/compose/scanner.toml",
        "deploy/compose/relay.toml",
        "deploy/compose/console.toml",
        "k8s/base/rempart.toml",
        "k8s/overlays/production/rempart.toml",
        "k8s/overlays/dev/rempart.toml",
    ];
    for file in files {
        let text = std::fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let text = text
            .replace("/etc/rempart/tls/tls.crt", &cert.display().to_string())
            .replace("/etc/rempart/tls/tls.key", &key.display().to_string());
        let copy = dir.path().join("rempart.toml");
        std::fs::write(&copy, text).unwrap();
        let out = rempart(&["config", "check", copy.to_str().unwrap()], Path::new("."), None);
        assert!(out.status.success(), "{file}: {}", String::from_utf8_lossy(&out.stderr));
    }
}
