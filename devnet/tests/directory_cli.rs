//! `tracenet-node directory ...` as an operator runs it against running nodes: the secretariat
//! founds the directory and admits a member from its certificate and key file, the member
//! publishes contacts and a policy (a bad policy file is refused before anything is proposed),
//! anyone reads members, contacts and policies, and a refused command exits non-zero with the
//! directory's reason.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use tracenet_devnet::{DevFederation, NodeSpec};
use tracenet_node::config::Role;

const BIN: &str = env!("CARGO_BIN_EXE_tracenet-node");

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn cli(args: Vec<String>) -> Out {
    tokio::task::spawn_blocking(move || {
        let o = Command::new(BIN)
            .args(&args)
            .env("TRACENET_LOG", "error")
            .output()
            .unwrap();
        Out {
            ok: o.status.success(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

fn args(cmd: &[&str], config: &Path, rest: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = cmd.iter().map(|s| (*s).to_owned()).collect();
    v.push("--config".into());
    v.push(config.display().to_string());
    v.extend(rest.iter().map(|s| (*s).to_owned()));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_found_and_use_the_directory_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let specs = [
        NodeSpec::new("CHE-SEC").voter(Role::Secretariat),
        NodeSpec::new("FRA-POL"),
    ];
    let fed = DevFederation::start_specs(dir.path(), &specs)
        .await
        .unwrap();
    let configs: Vec<PathBuf> = (0..2)
        .map(|i| {
            let p = dir.path().join(format!("node{i}.toml"));
            fed.nodes[i].write_config(&p).unwrap();
            p
        })
        .collect();
    let (sec, fra) = (&configs[0], &configs[1]);
    fed.wait_for_leader(0).await.unwrap();

    let o = cli(args(
        &["directory", "admit"],
        sec,
        &["--self", "--role", "secretariat"],
    ))
    .await;
    assert!(o.ok, "{}", o.stderr);
    let fra_dir = &fed.nodes[1].cert_dir;
    let o = cli(args(
        &["directory", "admit"],
        sec,
        &[
            "--cert",
            &fra_dir.join("node.pem").display().to_string(),
            "--signing-key",
            &fra_dir.join("signing.pub").display().to_string(),
            "--endpoint",
            &fed.nodes[1].peer_addr.to_string(),
            "--organisation",
            "Synthetic national police",
            "--region",
            "SYN-WEST",
        ],
    ))
    .await;
    assert!(o.ok, "{}", o.stderr);

    // A national member may not admit.
    let o = cli(args(
        &["directory", "revoke"],
        fra,
        &["CHE-SEC", "--reason", "not allowed"],
    ))
    .await;
    assert!(!o.ok);
    assert!(o.stderr.contains("only the secretariat"), "{}", o.stderr);

    let contacts = dir.path().join("contacts.toml");
    std::fs::write(
        &contacts,
        "[[contacts]]\nfunction = \"national focal point\"\norganisation = \"Synthetic national police\"\nemail = \"focal.point@example.test\"\nlanguages = [\"fr\", \"en\"]\n",
    )
    .unwrap();
    let o = cli(args(
        &["directory", "publish-contacts"],
        fra,
        &[&contacts.display().to_string()],
    ))
    .await;
    assert!(o.ok, "{}", o.stderr);

    // FRA-POL lists the gateway and admin certificates of its configuration in the directory;
    // it may revoke only those, the secretariat any certificate.
    let o = cli(args(&["directory", "publish-local-certs"], fra, &[])).await;
    assert!(o.ok, "{}", o.stderr);
    let other = "ab".repeat(32);
    let o = cli(args(&["directory", "revoke-cert"], fra, &[&other])).await;
    assert!(
        !o.ok && o.stderr.contains("may revoke only"),
        "{}",
        o.stderr
    );
    let o = cli(args(
        &["directory", "revoke-cert"],
        sec,
        &[&other, "--reason", "synthetic"],
    ))
    .await;
    assert!(o.ok, "{}", o.stderr);
    let o = cli(args(&["directory", "show"], sec, &["--linearizable"])).await;
    assert!(o.stdout.contains("revocations: 1"), "{}", o.stdout);

    let bad = dir.path().join("bad-policy.toml");
    std::fs::write(&bad, "owner_country = \"FRA\"\nversion = 0\n").unwrap();
    let o = cli(args(
        &["directory", "publish-policy"],
        fra,
        &[&bad.display().to_string()],
    ))
    .await;
    assert!(!o.ok, "a bad policy is refused");
    assert!(o.stderr.contains("bad-policy.toml"), "{}", o.stderr);

    let good = dir.path().join("policy.toml");
    std::fs::write(
        &good,
        "owner_country = \"FRA\"\nversion = 3\nlegal_basis = \"Synthetic basis\"\n\n[[rules]]\nid = \"r1\"\npurposes = [\"PURPOSE_TRACING\"]\ndata_classes = [\"DATA_CLASS_SEIZURE\"]\naudience = { countries = [\"DEU\"] }\nfields = [{ field = \"firearms.serial_number\", treatment = \"FIELD_TREATMENT_ALLOW\" }]\n",
    )
    .unwrap();
    let o = cli(args(
        &["directory", "publish-policy"],
        fra,
        &[&good.display().to_string()],
    ))
    .await;
    assert!(o.ok, "{}", o.stderr);

    // Reads from the secretariat's replica.
    let o = cli(args(&["directory", "members"], sec, &[])).await;
    assert!(o.ok, "{}", o.stderr);
    assert!(
        o.stdout.contains("FRA-POL") && o.stdout.contains("SYN-WEST"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("secretariat"), "{}", o.stdout);
    let o = cli(args(&["directory", "contacts"], sec, &["FRA"])).await;
    assert!(
        o.stdout.contains("focal.point@example.test"),
        "{} {}",
        o.stdout,
        o.stderr
    );
    let o = cli(args(&["directory", "policy"], sec, &["FRA"])).await;
    assert!(o.ok, "{}", o.stderr);
    assert!(
        o.stdout.contains("\"version\": \"3\"") || o.stdout.contains("\"version\": 3"),
        "{}",
        o.stdout
    );
    let o = cli(args(&["directory", "show"], fra, &["--linearizable"])).await;
    assert!(o.ok, "{}", o.stderr);
    assert!(o.stdout.contains("leader: CHE-SEC"), "{}", o.stdout);
    assert!(o.stdout.contains("learners: FRA-POL"), "{}", o.stdout);

    // The assistance board from the command line, with the example entry files: FRA-POL
    // publishes a need, the secretariat an offer, proposes it, FRA-POL accepts.
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
    let need = examples.join("assistance-need.toml").display().to_string();
    let offer = examples.join("assistance-offer.toml").display().to_string();
    let o = cli(args(&["directory", "assistance", "publish"], fra, &[&need])).await;
    assert!(o.ok, "{}", o.stderr);
    let o = cli(args(
        &["directory", "assistance", "publish"],
        sec,
        &[&offer],
    ))
    .await;
    assert!(o.ok, "{}", o.stderr);
    let o = cli(args(
        &["directory", "assistance", "propose"],
        sec,
        &[
            "m1",
            "--offer",
            "marking-loan",
            "--requester",
            "FRA-POL",
            "--need",
            "marking-2027",
        ],
    ))
    .await;
    assert!(o.ok, "{}", o.stderr);
    // Only the requesting State accepts.
    let o = cli(args(
        &["directory", "assistance", "step"],
        sec,
        &["CHE-SEC/m1", "accept"],
    ))
    .await;
    assert!(
        !o.ok && o.stderr.contains("only the requesting State"),
        "{}",
        o.stderr
    );
    let o = cli(args(
        &["directory", "assistance", "step"],
        fra,
        &["CHE-SEC/m1", "accept"],
    ))
    .await;
    assert!(o.ok, "{}", o.stderr);
    let o = cli(args(&["directory", "assistance", "board"], fra, &[])).await;
    assert!(o.ok, "{}", o.stderr);
    assert!(
        o.stdout.contains("FRA-POL/marking-2027") && o.stdout.contains("covered by CHE-SEC/m1"),
        "{}",
        o.stdout
    );
    let o = cli(args(&["directory", "assistance", "board"], fra, &["--csv"])).await;
    assert!(
        o.stdout.starts_with("kind,id,author") && o.stdout.contains("match,CHE-SEC/m1"),
        "{}",
        o.stdout
    );

    let o = cli(args(
        &["directory", "revoke"],
        sec,
        &["FRA-POL", "--reason", "synthetic"],
    ))
    .await;
    assert!(o.ok, "{}", o.stderr);
    let o = cli(args(&["directory", "members"], sec, &[])).await;
    assert!(o.stdout.contains("revoked"), "{}", o.stdout);
    fed.shutdown().await.unwrap();
}
