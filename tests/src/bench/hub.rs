//! Relay overhead: the same signed `Lookup` from FRA to DEU, once directly over mutual TLS and
//! once sealed through the regional hub (`Relay` → `Deliver`, sealed reply opened by the
//! caller), and once to an outbound-only member through the hub's mailbox (the member collects
//! it by long poll). The baseline of every row is the direct call of the same run.

use std::time::Instant;

use prost::Message;
use tracenet_node::config::Role;
use tracenet_node::envelope::{PeerKeys, SignedRequest, SigningKey};
use tracenet_node::ids::NodeId;
use tracenet_node::seal::{self, Address, SealingSecret};
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::hub_relay_client::HubRelayClient;

use super::report::{Report, Samples};
use crate::{ClientCert, Error, NodeSpec, TestFederation, wait_for};

const HUB: usize = 1;
const FRA: usize = 3;
const DEU: usize = 4;
const ITA: usize = 5;

fn policy(country: &str) -> String {
    format!(
        r#"
owner_country = "{country}"
version = 1
legal_basis = "Synthetic benchmark basis"

[[rules]]
id = "fra-serials"
purposes = ["PURPOSE_CRIMINAL_INVESTIGATION"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = {{ countries = ["FRA"] }}
fields = [{{ field = "firearms.serial_number", treatment = "FIELD_TREATMENT_ALLOW" }}]
"#
    )
}

fn lookup(key: &SigningKey, n: usize, serial: &str) -> pb::LookupRequest {
    let mut req = pb::LookupRequest {
        context: None,
        serial_number: serial.into(),
        manufacturer: String::new(),
        ..Default::default()
    };
    let rc = pb::RequestContext {
        request_id: format!("bench-hub-{n}-{}", tracenet_node::ids::new_request_id()),
        requester_node: "FRA-POL".into(),
        agency_kind: pb::AgencyKind::Police as i32,
        purpose: pb::Purpose::CriminalInvestigation as i32,
        legal_basis: "Synthetic benchmark basis".into(),
        case_reference: String::new(),
        issued_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
        body_sha256: Vec::new(),
    };
    req.sign_with(key, rc);
    req
}

/// Sealing keys of `ids` as the directory lists them.
async fn sealing_keys(t: &TestFederation, ids: &[&str]) -> Result<Vec<Vec<u8>>, Error> {
    wait_for("sealing keys in the directory", || async {
        let mut c = t.admin(FRA).await.ok()?;
        let state = c
            .get_directory(pb::GetDirectoryRequest::default())
            .await
            .ok()?
            .into_inner()
            .state?;
        ids.iter()
            .map(|id| {
                let e = state.entries.get(*id)?;
                (e.sealing_key.len() == 32 && e.hub_route.is_some()).then(|| e.sealing_key.clone())
            })
            .collect()
    })
    .await
}

/// Runs `calls` sequential lookups each way.
pub async fn run(calls: usize) -> Result<Report, Error> {
    let mut r = Report::new("hub relay: sealed lookup through a hub vs the direct call");
    r.param("sequential lookups per path", calls);
    let t = TestFederation::start_specs(&[
        NodeSpec::new("CHE-SEC").voter(Role::Secretariat),
        NodeSpec::new("BEL-HUB").voter(Role::Hub),
        NodeSpec::new("AUT-HUB").voter(Role::Hub),
        NodeSpec::new("FRA-POL").member_of_hub("BEL-HUB", false),
        NodeSpec::new("DEU-BKA")
            .with_policy(policy("DEU"))
            .member_of_hub("BEL-HUB", false),
        NodeSpec::new("ITA-CAR")
            .with_policy(policy("ITA"))
            .member_of_hub("BEL-HUB", true),
    ])
    .await?;
    t.fed.found_directory().await?;
    let keys = sealing_keys(&t, &["DEU-BKA", "ITA-CAR"]).await?;
    let key = t.signing_key(FRA)?;
    let own = NodeId::parse("FRA-POL")?;
    let secret = SealingSecret::load_or_generate(&t.node(FRA).config.data_dir.join("sealing.key"))?;
    let peer_keys = PeerKeys::new(
        [
            (NodeId::parse("DEU-BKA")?, t.public_key(DEU)?),
            (NodeId::parse("ITA-CAR")?, t.public_key(ITA)?),
        ]
        .into_iter()
        .collect(),
    );
    let mut direct = t.peer_client(DEU, ClientCert::Of(FRA, "node")).await?;
    let mut hub = HubRelayClient::new(t.channel(HUB, false, ClientCert::Of(FRA, "node")).await?);
    let serial = "SYN-BENCH-HUB-1";

    let relayed = |to: &str, key_of: &[u8], n: usize| -> Result<pb::SealedMessage, Error> {
        let req = lookup(&key, n, serial);
        Ok(seal::seal(
            &key,
            Address {
                message_id: seal::new_message_id()?,
                recipient: &NodeId::parse(to)?,
                recipient_key: key_of,
                kind: "Lookup",
                in_reply_to: "",
                sent_at: 0,
            },
            &pb::SealedBody {
                method: "/tracenet.v1.PeerExchange/Lookup".into(),
                messages: vec![req.encode_to_vec()],
                ..Default::default()
            },
        )?)
    };

    let warm = calls.clamp(1, 20);
    let mut base = Samples::with_capacity(calls);
    for n in 0..calls + warm {
        let req = lookup(&key, n, serial);
        let t0 = Instant::now();
        direct.lookup(req).await?;
        if n >= warm {
            base.push(t0.elapsed());
        }
    }
    let mut paths = Vec::new();
    for (label, to, k) in [
        (
            "relayed to a member that accepts connections",
            "DEU-BKA",
            &keys[0],
        ),
        (
            "relayed through the mailbox of an outbound-only member",
            "ITA-CAR",
            &keys[1],
        ),
    ] {
        let mut s = Samples::with_capacity(calls);
        for n in 0..calls + warm {
            let msg = relayed(to, k, n)?;
            let t0 = Instant::now();
            let reply = hub.relay(msg).await?.into_inner();
            let (_, body) = seal::open(&own, &secret, &peer_keys, &reply)?;
            if n >= warm {
                s.push(t0.elapsed());
            }
            if body.status_code != 0 {
                return Err(format!("{to} refused: {}", body.status_message).into());
            }
        }
        paths.push((label, s));
    }
    let (b50, b99) = (base.quantile_us(0.5), base.quantile_us(0.99));
    r.figure("direct lookup p50", b50, "us");
    r.figure("direct lookup p99", b99, "us");
    for (label, s) in paths {
        r.versus(&format!("{label} p50"), s.quantile_us(0.5), b50, "us");
        r.versus(&format!("{label} p99"), s.quantile_us(0.99), b99, "us");
    }
    t.shutdown().await?;
    Ok(r)
}
