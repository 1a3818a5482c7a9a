//! A small W3C WebDriver client driving Debian's chromium through chromedriver, for the web
//! console's end-to-end tests: navigate, find, click, type, read, and take screenshots. Only what
//! those tests use; every wait polls a condition with a deadline instead of sleeping blindly.
//!
//! A missing browser or driver is an error, never a skip: the console's tests must run.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::Error;

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// Longest a `wait_for_*` waits.
pub const WAIT: Duration = Duration::from_secs(20);

/// A chromedriver process and one browser session.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    base: String,
}

/// An element found on the current page.
#[derive(Debug, Clone)]
pub struct Element(String);

fn which(names: &[&str]) -> Option<String> {
    let path = std::env::var("PATH").unwrap_or_default();
    for name in names {
        for dir in path.split(':') {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return Some(p.display().to_string());
            }
        }
    }
    None
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless chromium session.
    pub async fn start() -> Result<Browser, Error> {
        let driver_bin = which(&["chromedriver"]).ok_or(
            "chromedriver not found: install Debian's chromium and chromium-driver (.ci/run does)",
        )?;
        let browser_bin = which(&["chromium", "chromium-browser", "google-chrome"])
            .ok_or("chromium not found: install Debian's chromium (.ci/run does)")?;
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {driver_bin}: {e}"))?;
        let mut b = Browser {
            driver,
            http: reqwest::Client::new(),
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + WAIT;
        loop {
            let ready = b
                .http
                .get(format!("{}/status", b.base))
                .send()
                .await
                .ok()
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ready {
                break;
            }
            if Instant::now() > deadline {
                return Err("chromedriver did not become ready".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": browser_bin,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,1100", "--lang=en-GB", "--no-first-run"]
            }
        }}});
        let v = b.raw("POST", "/session", Some(caps)).await?;
        let id = v["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session id in {v}"))?
            .to_owned();
        b.base = format!("{}/session/{id}", b.base);
        Ok(b)
    }

    async fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Error> {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let v: Value = req.send().await?.json().await?;
        if let Some(err) = v["value"]["error"].as_str() {
            return Err(format!(
                "webdriver {method} {path}: {err}: {}",
                v["value"]["message"].as_str().unwrap_or("")
            )
            .into());
        }
        Ok(v["value"].clone())
    }

    /// Opens a URL and waits for the page to load.
    pub async fn goto(&self, url: &str) -> Result<(), Error> {
        self.raw("POST", "/url", Some(json!({ "url": url })))
            .await?;
        Ok(())
    }

    /// The current URL.
    pub async fn url(&self) -> Result<String, Error> {
        Ok(self
            .raw("GET", "/url", None)
            .await?
            .as_str()
            .unwrap_or("")
            .to_owned())
    }

    /// The current page's HTML.
    pub async fn source(&self) -> Result<String, Error> {
        Ok(self
            .raw("GET", "/source", None)
            .await?
            .as_str()
            .unwrap_or("")
            .to_owned())
    }

    /// The first element matching a CSS selector, if any.
    pub async fn try_find(&self, css: &str) -> Result<Option<Element>, Error> {
        let v = self
            .raw(
                "POST",
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await?;
        Ok(v.as_array()
            .and_then(|a| a.first())
            .and_then(|e| e[ELEMENT].as_str())
            .map(|id| Element(id.to_owned())))
    }

    /// The first element matching a CSS selector, waiting for it to appear.
    pub async fn find(&self, css: &str) -> Result<Element, Error> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(e) = self.try_find(css).await? {
                return Ok(e);
            }
            if Instant::now() > deadline {
                let url = self.url().await.unwrap_or_default();
                return Err(format!("no element '{css}' on {url}").into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks an element.
    pub async fn click(&self, css: &str) -> Result<(), Error> {
        let e = self.find(css).await?;
        self.raw("POST", &format!("/element/{}/click", e.0), None)
            .await?;
        Ok(())
    }

    /// Replaces the text of an input.
    pub async fn fill(&self, css: &str, text: &str) -> Result<(), Error> {
        let e = self.find(css).await?;
        self.raw("POST", &format!("/element/{}/clear", e.0), None)
            .await?;
        self.raw(
            "POST",
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        )
        .await?;
        Ok(())
    }

    /// Picks the option with this value in a select.
    pub async fn select(&self, css: &str, value: &str) -> Result<(), Error> {
        self.click(&format!("{css} option[value='{value}']")).await
    }

    /// The visible text of an element.
    pub async fn text(&self, css: &str) -> Result<String, Error> {
        let e = self.find(css).await?;
        Ok(self
            .raw("GET", &format!("/element/{}/text", e.0), None)
            .await?
            .as_str()
            .unwrap_or("")
            .to_owned())
    }

    /// An attribute of an element.
    pub async fn attribute(&self, css: &str, name: &str) -> Result<String, Error> {
        let e = self.find(css).await?;
        Ok(self
            .raw("GET", &format!("/element/{}/attribute/{name}", e.0), None)
            .await?
            .as_str()
            .unwrap_or("")
            .to_owned())
    }

    /// Waits until the element's text contains `needle` (reloading the page between looks when
    /// `reload` is set, for state that changes on the server).
    pub async fn wait_for_text(
        &self,
        css: &str,
        needle: &str,
        reload: bool,
    ) -> Result<String, Error> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(e) = self.try_find(css).await? {
                let t = self
                    .raw("GET", &format!("/element/{}/text", e.0), None)
                    .await?
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                if t.contains(needle) {
                    return Ok(t);
                }
            }
            if Instant::now() > deadline {
                let body = self.source().await.unwrap_or_default();
                return Err(format!("'{needle}' never appeared in '{css}':\n{body}").into());
            }
            if reload {
                self.raw("POST", "/refresh", None).await?;
            } else {
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        }
    }

    /// Resizes the browser window (a tall window captures a whole long page).
    pub async fn resize(&self, width: u32, height: u32) -> Result<(), Error> {
        self.raw(
            "POST",
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await?;
        Ok(())
    }

    /// Writes a PNG of the current page to `path`.
    pub async fn screenshot(&self, path: &Path) -> Result<(), Error> {
        let b64 = self.raw("GET", "/screenshot", None).await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or(""))
            .map_err(|e| format!("screenshot: {e}"))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png)?;
        Ok(())
    }

    /// Closes the session and stops the driver.
    pub async fn close(mut self) {
        let _ = self.raw("DELETE", "", None).await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
