//! The demo's web consoles: one gateway per national node on 127.0.0.1, and one demo login
//! (all roles, a random password printed at start) on each.

use std::fmt::Write as _;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use tracenet_gateway::app::system_clock;
use tracenet_gateway::auth::{Role, random_secret};

use super::{DEMO_NODES, DemoError, check};
use crate::{DevFederation, DevGateway, DevnetError};

/// The demo user's name.
pub const DEMO_USER: &str = "demo";

/// Starts the consoles; returns them with the demo password.
pub async fn start(
    fed: &DevFederation,
    first_port: u16,
) -> Result<(Vec<(String, DevGateway)>, String), DemoError> {
    let password = random_secret(12)
        .map_err(|_| DemoError::Check("no system randomness for the demo password".into()))?;
    let mut out = Vec::new();
    for (i, node) in fed.nodes.iter().enumerate().take(DEMO_NODES.len()) {
        let port = if first_port == 0 {
            0
        } else {
            first_port.saturating_add(u16::try_from(i).unwrap_or(0))
        };
        let data = fed.dir.join("gateways").join(node.id.to_string());
        std::fs::create_dir_all(&data).map_err(DemoError::TempDir)?;
        let g = match fed
            .start_gateway(
                i,
                SocketAddr::from(([127, 0, 0, 1], port)),
                &data,
                system_clock(),
            )
            .await
        {
            Ok(g) => g,
            // The port is taken (another demo?): any free port will do.
            Err(DevnetError::Usage(_)) if port != 0 => {
                fed.start_gateway(
                    i,
                    SocketAddr::from(([127, 0, 0, 1], 0)),
                    &data,
                    system_clock(),
                )
                .await?
            }
            Err(e) => return Err(e.into()),
        };
        g.add_user(DEMO_USER, &password, &Role::ALL).await?;
        out.push((node.id.to_string(), g));
    }
    Ok((out, password))
}

/// Prints where the consoles are and how to log in.
pub fn print(consoles: &[(String, DevGateway)], password: &str) {
    println!();
    println!(
        "Web consoles (English/French; JSON API under /api/v1, OpenAPI at /api/v1/openapi.json):"
    );
    for (node, g) in consoles {
        println!("  {node:<8} {}", g.url);
    }
    println!("  login: user '{DEMO_USER}', password '{password}' (all roles; demo only)");
    println!("Press Ctrl-C to stop.");
}

/// One HTTP/1.1 request on loopback; returns the status code and body.
async fn http(addr: &str, request: String) -> Result<(u16, String), DemoError> {
    let fail = |e: std::io::Error| DemoError::Check(format!("gateway at {addr}: {e}"));
    let mut s = tokio::net::TcpStream::connect(addr).await.map_err(fail)?;
    s.write_all(request.as_bytes()).await.map_err(fail)?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.map_err(fail)?;
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    Ok((status, body))
}

/// The scenario's look at the gateway: FRA-POL's console serves its login page and its JSON
/// API answers an officer's token, and refuses a call without one.
pub async fn scenario(fed: &DevFederation, out: &mut String) -> Result<(), DemoError> {
    let data = fed.dir.join("gateways").join("scenario");
    std::fs::create_dir_all(&data).map_err(DemoError::TempDir)?;
    let g = fed
        .start_gateway(
            0,
            SocketAddr::from(([127, 0, 0, 1], 0)),
            &data,
            system_clock(),
        )
        .await?;
    let addr = g.url.trim_start_matches("http://").to_owned();
    let outcome = async {
        let token = g.add_token("demo-registry", &[Role::Officer]).await?;
        let (login, page) = http(
            &addr,
            format!("GET /login HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
        )
        .await?;
        check(login == 200 && page.contains("id=\"login-form\""), || {
            format!("the console's login page answered {login}")
        })?;
        let (anon, _) = http(
            &addr,
            format!("GET /api/v1/records HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
        )
        .await?;
        check(anon == 401, || {
            format!("the API without a token answered {anon}")
        })?;
        let (api, body) = http(
            &addr,
            format!(
                "GET /api/v1/records?page_size=3 HTTP/1.1\r\nHost: {addr}\r\n\
                 Authorization: Bearer {token}\r\nConnection: close\r\n\r\n"
            ),
        )
        .await?;
        let listed = body.matches("\"national_ref\"").count();
        check(api == 200 && listed > 0, || {
            format!("the API with a token answered {api}: {body}")
        })?;
        let _ = writeln!(
            out,
            "gateway: FRA-POL's console serves its login page at {}; its JSON API refuses a call \
             without a token (401) and lists {listed} records for an officer's token",
            g.url
        );
        Ok::<(), DemoError>(())
    }
    .await;
    let stopped = g.stop().await;
    outcome?;
    stopped?;
    Ok(())
}
