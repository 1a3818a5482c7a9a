//! `TestGateways`: three national nodes with the demo's synthetic sharing policies, and a real
//! gateway (HTTP on loopback, mutual TLS to its node) in front of FRA-POL and of DEU-CUS, each with
//! one console user per role and one API token per role. The gateways' clock is the system clock
//! plus an offset the test can move, so session expiry is tested without waiting.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tempfile::TempDir;
use tracenet_devnet::demo::policies;
use tracenet_devnet::{DevFederation, DevGateway, NodeSpec};
use tracenet_gateway::app::Clock;
use tracenet_gateway::auth::Role;
use tracenet_node::config::Role as MemberRole;
use tracenet_proto::v1 as pb;

use crate::Error;

/// Every test user's password.
pub const PASSWORD: &str = "synthetic-password-42";

/// Test users: name and roles (`all` holds every role).
pub const USERS: &[(&str, &[Role])] = &[
    ("officer", &[Role::Officer]),
    ("tracer", &[Role::TracingOfficer]),
    ("analyst", &[Role::Analyst]),
    ("admin", &[Role::Administrator]),
    ("all", &Role::ALL),
];

/// One gateway with its tokens by role.
#[derive(Debug)]
pub struct TestGateway {
    /// The running gateway.
    pub gw: DevGateway,
    /// A bearer token per role.
    pub tokens: HashMap<Role, String>,
}

impl TestGateway {
    /// The base URL.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gw.url)
    }

    /// The token for a role.
    pub fn token(&self, role: Role) -> &str {
        self.tokens.get(&role).map_or("", String::as_str)
    }
}

/// The federation (with a one-voter directory) and its two gateways.
#[derive(Debug)]
pub struct TestGateways {
    /// The nodes: 0 FRA-POL, 1 DEU-CUS, 2 ITA-POL, 3 CHE-SEC (the directory's voter).
    pub fed: DevFederation,
    /// The gateway of FRA-POL.
    pub fra: TestGateway,
    /// The gateway of DEU-CUS.
    pub deu: TestGateway,
    offset: Arc<AtomicI64>,
    _dir: TempDir,
}

fn stepped_clock(offset: Arc<AtomicI64>) -> Clock {
    let system = tracenet_gateway::app::system_clock();
    Arc::new(move || system() + offset.load(Ordering::SeqCst))
}

async fn gateway(
    fed: &DevFederation,
    i: usize,
    dir: &std::path::Path,
    clock: Clock,
) -> Result<TestGateway, Error> {
    let data = dir.join(format!("gateway-{i}"));
    let gw = fed
        .start_gateway(i, SocketAddr::from(([127, 0, 0, 1], 0)), &data, clock)
        .await?;
    for (name, roles) in USERS {
        gw.add_user(name, PASSWORD, roles).await?;
    }
    let mut tokens = HashMap::new();
    for role in Role::ALL {
        tokens.insert(role, gw.add_token(role.as_str(), &[role]).await?);
    }
    Ok(TestGateway { gw, tokens })
}

impl TestGateways {
    /// Starts the nodes, loads `records` synthetic records into each, and starts the gateways.
    pub async fn start(records: u64) -> Result<TestGateways, Error> {
        tracenet_node::tls::install_crypto_provider();
        let dir = tempfile::tempdir()?;
        let specs = [
            NodeSpec::new("FRA-POL").with_policy(policies::FRA),
            NodeSpec::new("DEU-CUS").with_policy(policies::DEU),
            NodeSpec::new("ITA-POL").with_policy(policies::ITA),
            NodeSpec::new("CHE-SEC").voter(MemberRole::Secretariat),
        ];
        let fed = DevFederation::start_specs(dir.path(), &specs).await?;
        fed.found_directory().await?;
        for i in 0..3 {
            let country = fed.nodes[i].config.country;
            let recs: Vec<pb::SeizureRecord> = (0..records)
                .map(|k| tracenet_node::sample::record(country, k))
                .collect();
            if !recs.is_empty() {
                fed.admin_client(i)
                    .await?
                    .import_batch(pb::ImportBatchRequest {
                        records: recs,
                        ..Default::default()
                    })
                    .await?;
            }
        }
        let offset = Arc::new(AtomicI64::new(0));
        let fra = gateway(&fed, 0, dir.path(), stepped_clock(offset.clone())).await?;
        let deu = gateway(&fed, 1, dir.path(), stepped_clock(offset.clone())).await?;
        Ok(TestGateways {
            fed,
            fra,
            deu,
            offset,
            _dir: dir,
        })
    }

    /// Moves the gateways' clock forward.
    pub fn advance_clock(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::SeqCst);
    }

    /// Stops gateways and nodes.
    pub async fn shutdown(self) -> Result<(), Error> {
        self.fra.gw.stop().await?;
        self.deu.gw.stop().await?;
        self.fed.shutdown().await?;
        Ok(())
    }
}

/// A console session: a cookie-keeping HTTP client that does not follow redirects.
#[derive(Debug, Clone)]
pub struct Console {
    /// The client.
    pub http: reqwest::Client,
    /// The gateway's base URL.
    pub base: String,
}

/// The value of a hidden `csrf` input in a page.
pub fn csrf_of(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")?;
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest.split('"').next().map(str::to_owned)
}

impl Console {
    /// A fresh browser-like client with no session.
    pub fn new(base: &str) -> Result<Console, Error> {
        Ok(Console {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            base: base.to_owned(),
        })
    }

    /// Logs in through the login form; returns the status of the form's answer.
    pub async fn login(&self, user: &str, password: &str) -> Result<reqwest::StatusCode, Error> {
        let page = self
            .http
            .get(format!("{}/login", self.base))
            .send()
            .await?
            .text()
            .await?;
        let token = csrf_of(&page).ok_or("no csrf token on the login page")?;
        let r = self
            .http
            .post(format!("{}/login", self.base))
            .form(&[
                ("csrf", token.as_str()),
                ("username", user),
                ("password", password),
                ("next", "/"),
            ])
            .send()
            .await?;
        Ok(r.status())
    }

    /// A logged-in console for `user`.
    pub async fn logged_in(base: &str, user: &str) -> Result<Console, Error> {
        let c = Console::new(base)?;
        let status = c.login(user, PASSWORD).await?;
        if status != reqwest::StatusCode::SEE_OTHER {
            return Err(format!("login of {user} answered {status}").into());
        }
        Ok(c)
    }

    /// GET a page: status and body.
    pub async fn get(&self, path: &str) -> Result<(reqwest::StatusCode, String), Error> {
        let r = self.http.get(format!("{}{path}", self.base)).send().await?;
        Ok((r.status(), r.text().await?))
    }

    /// The CSRF token of the session (read from a page that carries the logout form).
    pub async fn csrf(&self) -> Result<String, Error> {
        let (_, page) = self.get("/directory").await?;
        csrf_of(&page).ok_or_else(|| "no csrf token: not logged in?".into())
    }

    /// POST a form with the session's CSRF token added.
    pub async fn post(
        &self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Result<(reqwest::StatusCode, String), Error> {
        let token = self.csrf().await?;
        let mut all: Vec<(&str, &str)> = vec![("csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// POST a form exactly as given (no token added).
    pub async fn post_raw(
        &self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Result<(reqwest::StatusCode, String), Error> {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .form(fields)
            .send()
            .await?;
        Ok((r.status(), r.text().await?))
    }
}
