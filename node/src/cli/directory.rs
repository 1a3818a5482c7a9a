//! `tracenet-node directory ...`: read the directory through the node's local API, publish this
//! node's contact points, trace settings, sharing policy and marking practices, and (on the
//! secretariat's node) admit, suspend, reinstate and revoke members; `directory assistance ...`
//! reads the assistance board and publishes needs, offers, experts and match steps. Files are parsed and
//! checked here before anything is proposed; a refused command prints the directory's reason.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use tonic::transport::Channel;
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::directory_command::Op;
use tracenet_proto::v1::node_api_client::NodeApiClient;

use crate::client::connect_local;
use crate::config::NodeConfig;
use crate::country::CountryCode;
use crate::envelope::parse_public_key;
use crate::ids::NodeId;
use crate::policy::Policy;
use crate::tls::{TlsMaterial, fingerprint_of_pem_file, identity_of_pem_file};

/// The `directory` subcommands.
#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// Leader, term, voters, learners and what this replica has applied.
    Show {
        /// The node's TOML configuration.
        #[arg(long)]
        config: PathBuf,
        /// Confirm with the leader that the replica is current (needs a quorum).
        #[arg(long)]
        linearizable: bool,
    },
    /// Members with kind, role, status, endpoint, regions and member States.
    Members {
        /// The node's TOML configuration.
        #[arg(long)]
        config: PathBuf,
    },
    /// Points of contact and trace service settings, of one State or all.
    Contacts {
        /// The node's TOML configuration.
        #[arg(long)]
        config: PathBuf,
        /// ISO 3166 alpha-3 code; all States when omitted.
        country: Option<String>,
    },
    /// The sharing policies a State's members publish (current version, as JSON).
    Policy {
        /// The node's TOML configuration.
        #[arg(long)]
        config: PathBuf,
        /// ISO 3166 alpha-3 code.
        country: String,
        /// Every published version, not only the one in force.
        #[arg(long)]
        history: bool,
    },
    /// Publish this node's points of contact from a TOML file (`[[contacts]]` tables).
    PublishContacts {
        /// The node's TOML configuration.
        #[arg(long)]
        config: PathBuf,
        /// The file.
        file: PathBuf,
    },
    /// Publish this node's trace service settings from its configuration's `[trace]`.
    PublishTrace {
        /// The node's TOML configuration.
        #[arg(long)]
        config: PathBuf,
    },
    /// Publish this node's sharing policy from a policy TOML file (checked first).
    PublishPolicy {
        /// The node's TOML configuration.
        #[arg(long)]
        config: PathBuf,
        /// The policy file.
        file: PathBuf,
    },
    /// Publish this State's marking practices from a TOML file (`[[practices]]` tables).
    PublishMarking {
        /// The node's TOML configuration.
        #[arg(long)]
        config: PathBuf,
        /// The file.
        file: PathBuf,
    },
    /// Publish the fingerprints of this node's gateway and admin certificates: those of the
    /// given PEM files, or else the configuration's `[local_certificates]`. Replaces the list.
    PublishLocalCerts {
        /// The node's TOML configuration.
        #[arg(long)]
        config: PathBuf,
        /// A gateway certificate (PEM) of this node (repeatable).
        #[arg(long = "gateway-cert")]
        gateway_certs: Vec<PathBuf>,
        /// An admin certificate (PEM) of this node (repeatable).
        #[arg(long = "admin-cert")]
        admin_certs: Vec<PathBuf>,
    },
    /// Revoke one certificate by fingerprint or PEM file: the secretariat any, a member only a
    /// gateway or admin certificate it lists. Final; refused on every node from then on.
    RevokeCert {
        /// The node's TOML configuration.
        #[arg(long)]
        config: PathBuf,
        /// The certificate's SHA-256 fingerprint (hex), or a PEM file holding it.
        cert: String,
        /// Why (recorded in the directory).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Publish which of this State's nodes receive trace requests sent to it (the national
    /// tracing point of contact), optionally per weapon category. Only a State's node may, and
    /// only naming nodes of its own State.
    DesignateTracing {
        /// The node's TOML configuration.
        #[arg(long)]
        config: PathBuf,
        /// The node receiving trace requests (default: this node).
        #[arg(long)]
        node: Option<String>,
        /// A weapon category and its node, `CATEGORY=NODE` (e.g. `shotgun=BEL-CUS`;
        /// repeatable). Categories: the `WEAPON_CATEGORY_` names, in any case, without the
        /// prefix.
        #[arg(long = "category")]
        categories: Vec<String>,
    },
    /// Each State's designated tracing node(s).
    Tracing {
        /// The node's TOML configuration.
        #[arg(long)]
        config: PathBuf,
    },
    /// Secretariat: admit a member from its node certificate and signing key.
    Admit(AdmitArgs),
    /// Secretariat: suspend a member (its calls are refused until reinstated).
    Suspend(StatusArgs),
    /// Secretariat: reinstate a suspended member.
    Reinstate(StatusArgs),
    /// Secretariat: revoke a member and its certificate (final).
    Revoke(StatusArgs),
    /// The cooperation and assistance board: needs, offers, expert roster, matches.
    Assistance {
        /// What to do.
        #[command(subcommand)]
        command: AssistanceCommand,
    },
}

/// The `directory assistance` subcommands.
#[derive(Debug, Subcommand)]
pub enum AssistanceCommand {
    /// The board as this node may see it: needs (status, covered), offers, experts, matches,
    /// and offers ranked against needs with the reasons; `--csv` for the report export.
    Board {
        /// The node's TOML configuration.
        #[arg(long)]
        config: PathBuf,
        /// Print the board as CSV.
        #[arg(long)]
        csv: bool,
    },
    /// Publish (create or replace by id) a need, an offer or an expert roster entry of this
    /// member from a TOML file: a `[need]`, `[offer]` or `[expert]` table with the fields of
    /// `AssistanceNeed`, `AssistanceOffer` or `AssistanceExpert` (directory.proto).
    Publish {
        /// The node's TOML configuration.
        #[arg(long)]
        config: PathBuf,
        /// The file.
        file: PathBuf,
    },
    /// As a donor: propose one of this member's offers to meet another member's need.
    Propose {
        /// The node's TOML configuration.
        #[arg(long)]
        config: PathBuf,
        /// The match id (letters, digits, '-', '_'); the match is then `<this node>/<id>`.
        id: String,
        /// This member's offer.
        #[arg(long)]
        offer: String,
        /// The requesting member's node id.
        #[arg(long)]
        requester: String,
        /// Its need.
        #[arg(long)]
        need: String,
        /// A note for the requester.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Record a step of a match: accept or decline (the requesting State), in-progress,
    /// delivered, closed (either party).
    Step {
        /// The node's TOML configuration.
        #[arg(long)]
        config: PathBuf,
        /// The match (`<donor>/<id>`).
        match_id: String,
        /// accept, decline, in-progress, delivered or close.
        step: String,
        /// A note.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Attach a lessons-learned note to a delivered match (either party).
    Lessons {
        /// The node's TOML configuration.
        #[arg(long)]
        config: PathBuf,
        /// The match (`<donor>/<id>`).
        match_id: String,
        /// The note.
        text: String,
    },
}

/// Arguments of `admit`.
#[derive(Debug, clap::Args)]
pub struct AdmitArgs {
    /// The secretariat node's TOML configuration.
    #[arg(long)]
    config: PathBuf,
    /// Admit the secretariat node itself (founding the directory).
    #[arg(long = "self", conflicts_with_all = ["cert", "signing_key", "endpoint"])]
    itself: bool,
    /// The member's node certificate (PEM); its identity and fingerprint are read from it.
    #[arg(long, required_unless_present = "itself")]
    cert: Option<PathBuf>,
    /// The member's Ed25519 public key: 64 hex digits, or a file holding them.
    #[arg(long, required_unless_present = "itself")]
    signing_key: Option<String>,
    /// host:port of the member's peer API.
    #[arg(long, required_unless_present = "itself")]
    endpoint: Option<String>,
    /// national, hub or secretariat.
    #[arg(long, default_value = "national")]
    role: String,
    /// What kind of member it is: national-agency, regional-organisation, international-body
    /// or secretariat. Default: national-agency for a State's node id (`FRA-POL`); required
    /// for an organisation's (`ECOWAS-HUB`).
    #[arg(long, default_value = "")]
    kind: String,
    /// A regional organisation's member State, ISO alpha-3 (repeatable).
    #[arg(long = "member-state")]
    member_states: Vec<String>,
    /// The member's organisation.
    #[arg(long, default_value = "")]
    organisation: String,
    /// Regions the member belongs to (repeatable).
    #[arg(long = "region")]
    regions: Vec<String>,
    /// The kind of agency it is (police, customs, border-guard, military, other); requests
    /// claiming another kind are then refused. Empty: not bound.
    #[arg(long, default_value = "")]
    agency_kind: String,
}

/// Arguments of suspend, reinstate and revoke.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The secretariat node's TOML configuration.
    #[arg(long)]
    config: PathBuf,
    /// The member's node id.
    node_id: String,
    /// Why, for the record.
    #[arg(long, default_value = "")]
    reason: String,
}

async fn client(config: &Path) -> Result<(NodeConfig, NodeApiClient<Channel>), String> {
    let cfg = NodeConfig::load(config).map_err(|e| e.to_string())?;
    let admin = cfg.admin.as_ref().ok_or_else(|| {
        "the config has no [admin] section: directory commands need the administrator certificate"
            .to_owned()
    })?;
    let tls = TlsMaterial::load_client(&cfg.tls.ca, admin).map_err(|e| e.to_string())?;
    let c = connect_local(&cfg.local_api.listen.to_string(), &tls, &cfg.node_id)
        .await
        .map_err(|e| e.to_string())?;
    Ok((cfg, c))
}

/// The whole directory, read page by page (each page is bounded by the node).
async fn view(config: &Path, linearizable: bool) -> Result<pb::DirectoryView, String> {
    let (_, mut c) = client(config).await?;
    let mut page_after = String::new();
    let mut whole: Option<pb::DirectoryView> = None;
    loop {
        let page = c
            .get_directory(pb::GetDirectoryRequest {
                linearizable,
                page_after: page_after.clone(),
                page_size: 0,
            })
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| s.message().to_owned())?;
        let next = page.next_page_after.clone();
        match &mut whole {
            None => whole = Some(page),
            Some(w) => {
                let (into, from) = (
                    w.state.get_or_insert_default(),
                    page.state.unwrap_or_default(),
                );
                into.members.extend(from.members);
                into.entries.extend(from.entries);
                into.proofs.extend(from.proofs);
                into.revocations = from.revocations;
                into.assistance_matches = from.assistance_matches;
            }
        }
        // A node answering the same token again would loop forever: stop instead.
        if next.is_empty() || next <= page_after {
            break;
        }
        page_after = next;
    }
    let mut whole = whole.unwrap_or_default();
    whole.next_page_after.clear();
    Ok(whole)
}

async fn propose(config: &Path, op: Op) -> Result<(), String> {
    let (_, mut c) = client(config).await?;
    let r = c
        .propose_directory(pb::ProposeDirectoryRequest {
            command: Some(pb::DirectoryCommand {
                writer: String::new(),
                at: 0,
                seq: 0,
                signature: Vec::new(),
                op: Some(op),
            }),
        })
        .await
        .map_err(|s| s.message().to_owned())?
        .into_inner();
    if r.applied {
        println!("applied");
        Ok(())
    } else {
        Err(format!("refused by the directory: {}", r.refusal))
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn agency_kind(s: &str) -> Result<pb::AgencyKind, String> {
    match s {
        "" => Ok(pb::AgencyKind::Unspecified),
        "police" => Ok(pb::AgencyKind::Police),
        "customs" => Ok(pb::AgencyKind::Customs),
        "border-guard" => Ok(pb::AgencyKind::BorderGuard),
        "military" => Ok(pb::AgencyKind::Military),
        "other" => Ok(pb::AgencyKind::Other),
        other => Err(format!(
            "unknown agency kind '{other}' (police, customs, border-guard, military or other)"
        )),
    }
}

/// The member kind `--kind` names; empty: a national agency for a State's node.
fn member_kind(s: &str, node: &NodeId) -> Result<pb::MemberKind, String> {
    match (s, node.state()) {
        ("", Some(_)) | ("national-agency", _) => Ok(pb::MemberKind::NationalAgency),
        ("", None) => Err(format!(
            "{node} is an organisation's node: --kind regional-organisation, international-body or secretariat is required"
        )),
        ("regional-organisation", _) => Ok(pb::MemberKind::RegionalOrganisation),
        ("international-body", _) => Ok(pb::MemberKind::InternationalBody),
        ("secretariat", _) => Ok(pb::MemberKind::Secretariat),
        (other, _) => Err(format!(
            "unknown member kind '{other}' (national-agency, regional-organisation, international-body or secretariat)"
        )),
    }
}

/// A weapon category by its proto name without the prefix, in any case (`shotgun`).
fn weapon_category(s: &str) -> Result<pb::WeaponCategory, String> {
    let name = format!(
        "WEAPON_CATEGORY_{}",
        s.trim().to_ascii_uppercase().replace('-', "_")
    );
    match pb::WeaponCategory::from_str_name(&name) {
        Some(pb::WeaponCategory::Unspecified) | None => {
            Err(format!("unknown weapon category '{s}'"))
        }
        Some(c) => Ok(c),
    }
}

/// The designation `designate-tracing` publishes.
fn designation(
    own: &NodeId,
    node: Option<&str>,
    categories: &[String],
) -> Result<pb::TracingDesignation, String> {
    let node = match node {
        None => own.clone(),
        Some(n) => NodeId::parse(n).map_err(|e| e.to_string())?,
    };
    let mut out = pb::TracingDesignation {
        node_id: node.to_string(),
        ..Default::default()
    };
    for c in categories {
        let (cat, n) = c
            .split_once('=')
            .ok_or_else(|| format!("--category {c}: expected CATEGORY=NODE"))?;
        let n = NodeId::parse(n.trim()).map_err(|e| e.to_string())?;
        out.categories.push(pb::CategoryDesignation {
            category: weapon_category(cat)? as i32,
            node_id: n.to_string(),
        });
    }
    Ok(out)
}

fn role(s: &str) -> Result<pb::MemberRole, String> {
    match s {
        "national" => Ok(pb::MemberRole::National),
        "hub" => Ok(pb::MemberRole::Hub),
        "secretariat" => Ok(pb::MemberRole::Secretariat),
        other => Err(format!(
            "unknown role '{other}' (national, hub or secretariat)"
        )),
    }
}

fn enum_name(n: &str, prefix: &str) -> String {
    n.trim_start_matches(prefix).to_lowercase()
}

fn state(v: &pb::DirectoryView) -> pb::DirectoryState {
    v.state.clone().unwrap_or_default()
}

fn in_country(node: &str, country: Option<CountryCode>) -> bool {
    country.is_none_or(|c| NodeId::parse(node).is_ok_and(|n| n.is_of_state(c)))
}

/// The step a word names.
fn step_status(s: &str) -> Result<pb::AssistanceStatus, String> {
    match s {
        "accept" => Ok(pb::AssistanceStatus::Matched),
        "decline" => Ok(pb::AssistanceStatus::Declined),
        "in-progress" => Ok(pb::AssistanceStatus::InProgress),
        "delivered" => Ok(pb::AssistanceStatus::Delivered),
        "close" => Ok(pb::AssistanceStatus::Closed),
        other => Err(format!(
            "unknown step '{other}' (accept, decline, in-progress, delivered or close)"
        )),
    }
}

/// Runs a `directory assistance` subcommand.
async fn assistance(command: AssistanceCommand) -> Result<(), String> {
    use tracenet_proto::assistance::{board_csv, category_name, status_name};
    match command {
        AssistanceCommand::Board { config, csv } => {
            let (_, mut c) = client(&config).await?;
            let b = c
                .assistance_board(pb::AssistanceBoardRequest {})
                .await
                .map_err(|s| s.message().to_owned())?
                .into_inner();
            if csv {
                print!("{}", board_csv(&b).map_err(|e| e.to_string())?);
                return Ok(());
            }
            println!("needs:");
            for n in &b.needs {
                let need = n.need.clone().unwrap_or_default();
                println!(
                    "  {}/{} [{}] {} ({}, priority {}, {}){}",
                    n.author,
                    need.id,
                    category_name(need.category),
                    need.title,
                    status_name(n.status),
                    need.priority,
                    n.regions.join(" "),
                    if n.covered {
                        format!(" covered by {}", n.covered_by)
                    } else {
                        String::new()
                    }
                );
            }
            println!("offers:");
            for o in &b.offers {
                let offer = o.offer.clone().unwrap_or_default();
                let cats: Vec<String> =
                    offer.categories.iter().map(|c| category_name(*c)).collect();
                println!(
                    "  {}/{} [{}] {} ({}, {} active)",
                    o.author,
                    offer.id,
                    cats.join(" "),
                    offer.title,
                    status_name(o.status),
                    o.active_matches
                );
            }
            println!("experts:");
            for x in &b.experts {
                let e = x.expert.clone().unwrap_or_default();
                let cats: Vec<String> = e.expertise.iter().map(|c| category_name(*c)).collect();
                println!(
                    "  {}/{} {} [{}] {}",
                    x.author,
                    e.id,
                    e.name_or_function,
                    cats.join(" "),
                    e.languages.join(" ")
                );
            }
            println!("matches:");
            for m in &b.matches {
                let x = m.r#match.clone().unwrap_or_default();
                println!(
                    "  {} {}/{} -> {}/{} {}{}",
                    x.id,
                    x.donor,
                    x.offer_id,
                    x.requester,
                    x.need_id,
                    status_name(x.status),
                    if m.overdue { " OVERDUE" } else { "" }
                );
            }
            println!("suggestions:");
            for s in &b.suggestions {
                println!(
                    "  {}/{} <- {}/{} score {} ({})",
                    s.need_author,
                    s.need_id,
                    s.offer_author,
                    s.offer_id,
                    s.score,
                    s.reasons.join(", ")
                );
            }
            Ok(())
        }
        AssistanceCommand::Publish { config, file } => {
            let entry: pb::AssistanceEntry = parse_toml(&file)?;
            propose(&config, Op::PublishAssistance(entry)).await
        }
        AssistanceCommand::Propose {
            config,
            id,
            offer,
            requester,
            need,
            note,
        } => {
            let p = pb::AssistanceProposal {
                id,
                offer_id: offer,
                requester,
                need_id: need,
                note,
            };
            propose(&config, Op::ProposeAssistance(p)).await
        }
        AssistanceCommand::Step {
            config,
            match_id,
            step,
            note,
        } => {
            let s = pb::AssistanceStep {
                match_id,
                status: step_status(&step)? as i32,
                note,
                lessons: String::new(),
            };
            propose(&config, Op::AssistanceStep(s)).await
        }
        AssistanceCommand::Lessons {
            config,
            match_id,
            text,
        } => {
            let s = pb::AssistanceStep {
                match_id,
                status: pb::AssistanceStatus::Unspecified as i32,
                note: String::new(),
                lessons: text,
            };
            propose(&config, Op::AssistanceStep(s)).await
        }
    }
}

/// Runs a `directory` subcommand.
pub async fn run(command: DirectoryCommand) -> Result<(), String> {
    match command {
        DirectoryCommand::Assistance { command } => assistance(command).await,
        DirectoryCommand::Show {
            config,
            linearizable,
        } => show(&config, linearizable).await,
        DirectoryCommand::Members { config } => members(&config).await,
        DirectoryCommand::DesignateTracing {
            config,
            node,
            categories,
        } => {
            let cfg = NodeConfig::load(&config).map_err(|e| e.to_string())?;
            let d = designation(&cfg.node_id, node.as_deref(), &categories)?;
            propose(&config, Op::PublishTracingDesignation(d)).await
        }
        DirectoryCommand::Tracing { config } => tracing_points(&config).await,
        DirectoryCommand::Contacts { config, country } => contacts(&config, country).await,
        DirectoryCommand::Policy {
            config,
            country,
            history,
        } => policy(&config, &country, history).await,
        DirectoryCommand::PublishContacts { config, file } => {
            let contacts: pb::ContactPoints = parse_toml(&file)?;
            propose(&config, Op::PublishContacts(contacts)).await
        }
        DirectoryCommand::PublishTrace { config } => publish_trace(&config).await,
        DirectoryCommand::PublishPolicy { config, file } => {
            let policy =
                Policy::from_toml(&read(&file)?).map_err(|e| format!("{}: {e}", file.display()))?;
            propose(&config, Op::PublishPolicy(policy.source().clone())).await
        }
        DirectoryCommand::PublishMarking { config, file } => {
            let practices: pb::MarkingPractices = parse_toml(&file)?;
            propose(&config, Op::PublishMarkingPractices(practices)).await
        }
        DirectoryCommand::PublishLocalCerts {
            config,
            gateway_certs,
            admin_certs,
        } => {
            let list = local_certificates(&config, &gateway_certs, &admin_certs)?;
            propose(&config, Op::PublishLocalCertificates(list)).await
        }
        DirectoryCommand::RevokeCert {
            config,
            cert,
            reason,
        } => {
            let cert_fingerprint = if Path::new(&cert).is_file() {
                fingerprint_of_pem_file(Path::new(&cert)).map_err(|e| e.to_string())?
            } else {
                cert
            };
            propose(
                &config,
                Op::RevokeCertificate(pb::CertificateRevocation {
                    cert_fingerprint,
                    reason,
                }),
            )
            .await
        }
        DirectoryCommand::Admit(a) => {
            let member = admitted_member(&a)?;
            propose(&a.config, Op::Admit(member)).await
        }
        DirectoryCommand::Suspend(a) => propose(&a.config, Op::Suspend(status_change(&a)?)).await,
        DirectoryCommand::Reinstate(a) => {
            propose(&a.config, Op::Reinstate(status_change(&a)?)).await
        }
        DirectoryCommand::Revoke(a) => propose(&a.config, Op::Revoke(status_change(&a)?)).await,
    }
}

fn parse_toml<T: serde::de::DeserializeOwned>(file: &Path) -> Result<T, String> {
    toml::from_str(&read(file)?).map_err(|e| format!("{}: {e}", file.display()))
}

/// `directory show`: leader, term, voters, learners, indexes and counts.
async fn show(config: &Path, linearizable: bool) -> Result<(), String> {
    let v = view(config, linearizable).await?;
    let s = state(&v);
    println!(
        "leader: {}\nterm: {}\nvoters: {}\nlearners: {}\napplied index: {}\nsnapshot index: {}\nmembers: {}\nrevocations: {}",
        if v.leader.is_empty() {
            "none known"
        } else {
            &v.leader
        },
        v.term,
        v.voters.join(", "),
        v.learners.join(", "),
        v.applied_index,
        v.snapshot_index,
        s.members.len(),
        s.revocations.len()
    );
    Ok(())
}

/// `directory members`: one line per member, sorted by node id.
async fn members(config: &Path) -> Result<(), String> {
    let s = state(&view(config, false).await?);
    println!(
        "{:<16} {:<22} {:<12} {:<10} {:<24} regions / member States / organisation",
        "node", "kind", "role", "status", "endpoint"
    );
    let mut members: Vec<_> = s.members.values().collect();
    members.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    for m in members {
        let role = pb::MemberRole::try_from(m.role).unwrap_or_default();
        let status = pb::MemberStatus::try_from(m.status).unwrap_or_default();
        let kind = NodeId::parse(&m.node_id).map_or(pb::MemberKind::Unspecified, |id| {
            crate::policy::member_kind(id.affiliation(), pb::MemberKind::try_from(m.kind).ok())
        });
        println!(
            "{:<16} {:<22} {:<12} {:<10} {:<24} [{}] [{}] {}",
            m.node_id,
            enum_name(kind.as_str_name(), "MEMBER_KIND_"),
            enum_name(role.as_str_name(), "MEMBER_ROLE_"),
            enum_name(status.as_str_name(), "MEMBER_STATUS_"),
            m.endpoint,
            m.regions.join(","),
            m.member_states.join(","),
            m.organisation
        );
    }
    Ok(())
}

/// `directory tracing`: each State's designation in force, as the roster derives it.
async fn tracing_points(config: &Path) -> Result<(), String> {
    let s = state(&view(config, false).await?);
    let mut listed = false;
    let mut by_state: std::collections::BTreeMap<String, (i64, String, &pb::TracingDesignation)> =
        std::collections::BTreeMap::new();
    for (node, e) in &s.entries {
        let (Some(d), Some(c)) = (
            e.tracing_designation.as_ref(),
            NodeId::parse(node).ok().and_then(|n| n.state()),
        ) else {
            continue;
        };
        let newer = by_state
            .get(c.as_str())
            .is_none_or(|(at, by, _)| (*at, by.as_str()) < (d.published_at, node.as_str()));
        if newer {
            by_state.insert(c.to_string(), (d.published_at, node.clone(), d));
        }
    }
    for (c, (_, by, d)) in by_state {
        listed = true;
        println!("{c}: {} (published by {by})", d.node_id);
        for x in &d.categories {
            let cat = pb::WeaponCategory::try_from(x.category).unwrap_or_default();
            println!(
                "  {}: {}",
                enum_name(cat.as_str_name(), "WEAPON_CATEGORY_"),
                x.node_id
            );
        }
    }
    if !listed {
        println!("no State has designated a tracing node");
    }
    Ok(())
}

/// `directory contacts`: trace settings and contact points, per node.
async fn contacts(config: &Path, country: Option<String>) -> Result<(), String> {
    let country = country
        .map(|c| CountryCode::parse(&c).map_err(|e| e.to_string()))
        .transpose()?;
    let s = state(&view(config, false).await?);
    let mut nodes: Vec<_> = s
        .entries
        .iter()
        .filter(|(n, _)| in_country(n, country))
        .collect();
    nodes.sort_by(|a, b| a.0.cmp(b.0));
    for (node, e) in nodes {
        println!("{node}");
        if let Some(t) = &e.trace {
            println!(
                "  trace requests: routine {} days, urgent {} days, escalation: {}",
                t.routine_days, t.urgent_days, t.escalation_contact
            );
        }
        for c in &e.contacts {
            println!(
                "  {}: {} <{}> {} [{}] {}",
                c.function,
                c.organisation,
                c.email,
                c.phone,
                c.languages.join(","),
                c.working_hours
            );
        }
    }
    Ok(())
}

/// `directory policy`: the policy in force (or every version) of a country's members, as JSON.
async fn policy(config: &Path, country: &str, history: bool) -> Result<(), String> {
    let c = CountryCode::parse(country).map_err(|e| e.to_string())?;
    let s = state(&view(config, false).await?);
    let mut found = false;
    for (node, e) in s.entries.iter().filter(|(n, _)| in_country(n, Some(c))) {
        let shown: Vec<_> = if history {
            e.policies.iter().collect()
        } else {
            e.policies.last().into_iter().collect()
        };
        for p in shown {
            found = true;
            let json = serde_json::to_string_pretty(p).map_err(|e| e.to_string())?;
            println!("# {node}\n{json}");
        }
    }
    if found {
        Ok(())
    } else {
        Err(format!("no member of {c} has published a sharing policy"))
    }
}

/// `directory publish-trace`: this node's `[trace]` settings.
async fn publish_trace(config: &Path) -> Result<(), String> {
    let cfg = NodeConfig::load(config).map_err(|e| e.to_string())?;
    propose(
        config,
        Op::PublishTraceSettings(pb::TraceServiceSettings {
            routine_days: cfg.trace.routine_days,
            urgent_days: cfg.trace.urgent_days,
            escalation_contact: cfg.trace.escalation_contact.clone(),
        }),
    )
    .await
}

/// The member an `admit` proposes: the secretariat itself, or a node read from its certificate
/// and signing key.
fn admitted_member(a: &AdmitArgs) -> Result<pb::Member, String> {
    let role = role(&a.role)?;
    if a.itself {
        let cfg = NodeConfig::load(&a.config).map_err(|e| e.to_string())?;
        return Ok(pb::Member {
            node_id: cfg.node_id.to_string(),
            role: role as i32,
            organisation: a.organisation.clone(),
            regions: a.regions.clone(),
            agency_kind: agency_kind(&a.agency_kind)? as i32,
            kind: member_kind(&a.kind, &cfg.node_id)? as i32,
            member_states: member_states(&a.member_states)?,
            ..Default::default()
        });
    }
    let cert = a.cert.as_ref().ok_or("--cert is required")?;
    let node = identity_of_pem_file(cert).map_err(|e| e.to_string())?;
    let key_text = a.signing_key.clone().ok_or("--signing-key is required")?;
    let key_hex = if Path::new(&key_text).is_file() {
        read(Path::new(&key_text))?
    } else {
        key_text
    };
    Ok(pb::Member {
        node_id: node.to_string(),
        // A State's node has its State; an organisation has no country.
        country: node.state().map(|c| c.to_string()).unwrap_or_default(),
        organisation: a.organisation.clone(),
        role: role as i32,
        endpoint: a.endpoint.clone().ok_or("--endpoint is required")?,
        cert_fingerprint: fingerprint_of_pem_file(cert).map_err(|e| e.to_string())?,
        signing_key: parse_public_key(&key_hex)
            .ok_or("--signing-key is not 64 hexadecimal digits")?,
        sealing_key: Vec::new(),
        status: 0,
        regions: a.regions.clone(),
        agency_kind: agency_kind(&a.agency_kind)? as i32,
        kind: member_kind(&a.kind, &node)? as i32,
        member_states: member_states(&a.member_states)?,
    })
}

/// `--member-state` values, checked and uppercased.
fn member_states(states: &[String]) -> Result<Vec<String>, String> {
    states
        .iter()
        .map(|c| {
            CountryCode::parse(c)
                .map(|c| c.to_string())
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// What `publish-local-certs` publishes: the given certificates' fingerprints, or, with none
/// given, the configuration's `[local_certificates]`.
fn local_certificates(
    config: &Path,
    gateway: &[PathBuf],
    admin: &[PathBuf],
) -> Result<pb::LocalCertificates, String> {
    let fingerprints = |files: &[PathBuf]| {
        files
            .iter()
            .map(|f| fingerprint_of_pem_file(f).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()
    };
    if gateway.is_empty() && admin.is_empty() {
        let cfg = NodeConfig::load(config).map_err(|e| e.to_string())?;
        return Ok(pb::LocalCertificates {
            gateway_fingerprints: cfg.local_certificates.gateway_fingerprints,
            admin_fingerprints: cfg.local_certificates.admin_fingerprints,
        });
    }
    Ok(pb::LocalCertificates {
        gateway_fingerprints: fingerprints(gateway)?,
        admin_fingerprints: fingerprints(admin)?,
    })
}

fn status_change(a: &StatusArgs) -> Result<pb::StatusChange, String> {
    let node = NodeId::parse(&a.node_id).map_err(|e| e.to_string())?;
    Ok(pb::StatusChange {
        node_id: node.to_string(),
        reason: a.reason.clone(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn kinds_categories_and_designations_parse() {
        let fra = NodeId::parse("FRA-POL").unwrap();
        let hub = NodeId::parse("WESTREG-HUB").unwrap();
        assert_eq!(member_kind("", &fra), Ok(pb::MemberKind::NationalAgency));
        assert!(member_kind("", &hub).unwrap_err().contains("--kind"));
        assert_eq!(
            member_kind("regional-organisation", &hub),
            Ok(pb::MemberKind::RegionalOrganisation)
        );
        assert!(member_kind("state", &fra).is_err());
        assert_eq!(weapon_category("shotgun"), Ok(pb::WeaponCategory::Shotgun));
        assert_eq!(
            weapon_category("rifle-or-carbine"),
            Ok(pb::WeaponCategory::RifleOrCarbine)
        );
        assert!(weapon_category("unspecified").is_err());
        let d = designation(&fra, None, &["shotgun=FRA-CUS".into()]).unwrap();
        assert_eq!(d.node_id, "FRA-POL");
        assert_eq!(d.categories[0].node_id, "FRA-CUS");
        assert!(designation(&fra, Some("nope"), &[]).is_err());
        assert!(designation(&fra, None, &["shotgun".into()]).is_err());
        assert_eq!(member_states(&["bel".into()]), Ok(vec!["BEL".to_owned()]));
        assert!(member_states(&["XXX".into()]).is_err());
    }

    #[test]
    fn the_example_entry_files_parse() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/examples"));
        let c: pb::ContactPoints =
            toml::from_str(&read(&dir.join("contacts.toml")).unwrap()).unwrap();
        assert_eq!(c.contacts.len(), 2);
        assert_eq!(c.contacts[1].languages, vec!["fr", "en", "es"]);
        let m: pb::MarkingPractices =
            toml::from_str(&read(&dir.join("marking.toml")).unwrap()).unwrap();
        assert_eq!(m.practices[0].manufacturer, "Synthetic Arms Works");
    }

    #[test]
    fn roles_parse_and_unknown_ones_are_refused() {
        assert_eq!(role("hub").unwrap(), pb::MemberRole::Hub);
        assert!(role("admin").is_err());
    }
}
