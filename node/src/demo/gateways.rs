//! The demo's web consoles: one gateway per national node on 127.0.0.1, and one demo login
//! (all roles, a random password printed at start) on each.

use std::net::SocketAddr;

use tracenet_gateway::app::system_clock;
use tracenet_gateway::auth::{Role, random_secret};

use super::{DEMO_NODES, DemoError};
use crate::devnet::{DevFederation, DevGateway, DevnetError};

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
