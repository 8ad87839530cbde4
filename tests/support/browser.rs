//! A test "browser": an HTTP client that goes through the sandbox's sign-in and device-login
//! pages as a person would (user name, password, the MFA code from the user's authenticator
//! secret, approve or decline), trusting only the sandbox's CA.
//!
//! It reads the pages' forms (the `action`, the hidden `flow` field) from their HTML; redirects
//! are not followed, so a test sees the redirect to exo's loopback listener and delivers it.

use std::time::Duration;

use sandbox::RunningSandbox;
pub use sandbox::client::html_attribute as attribute;

/// What a sign-in page flow ended with.
#[derive(Debug)]
pub enum Outcome {
    /// A redirect (to the client's redirect URI): its `Location`.
    Redirect(String),
    /// A page: its HTML (an error, or the next step).
    Page(String),
}

/// A person at a browser, for one sandbox.
pub struct TestBrowser {
    http: reqwest::blocking::Client,
}

/// A user's credentials as the seed has them.
pub struct Person<'a> {
    /// The user principal name.
    pub upn: &'a str,
    /// The password to type.
    pub password: &'a str,
    /// The base32 TOTP secret, for MFA users.
    pub totp_secret: Option<&'a str>,
}

impl<'a> Person<'a> {
    /// The seeded user `upn` of `sandbox`.
    pub fn seeded(sandbox: &'a RunningSandbox, upn: &'a str) -> Self {
        let user = sandbox
            .seed()
            .tenants
            .iter()
            .flat_map(|t| t.users.iter())
            .find(|u| u.upn.eq_ignore_ascii_case(upn))
            .expect("a seeded user");
        Self {
            upn,
            password: &user.password,
            totp_secret: user.totp_secret.as_deref(),
        }
    }
}

impl TestBrowser {
    /// A browser trusting `sandbox`'s CA.
    pub fn new(sandbox: &RunningSandbox) -> Self {
        let ca = reqwest::Certificate::from_pem(sandbox.ca_pem().as_bytes()).expect("CA");
        Self {
            http: reqwest::blocking::Client::builder()
                .tls_certs_only([ca])
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
        }
    }

    /// Opens `url` (an authorization URL) and signs in as `person`; `mfa_code` overrides the
    /// TOTP code (to type a wrong one).
    pub fn sign_in(&self, url: &str, person: &Person<'_>, mfa_code: Option<&str>) -> Outcome {
        let page = self.get(url);
        let page = match self.submit(&page, &[("login", person.upn)]) {
            Outcome::Page(page) => page,
            redirect => return redirect,
        };
        self.credentials(page, person, mfa_code)
    }

    /// Opens the device-login page, enters `user_code`, signs in as `person`, and approves or
    /// declines; returns the last page.
    pub fn device_login(
        &self,
        verification_uri: &str,
        user_code: &str,
        person: &Person<'_>,
        approve: bool,
    ) -> String {
        let page = self.get(verification_uri);
        let Outcome::Page(page) = self.submit(&page, &[("otc", user_code)]) else {
            panic!("the device-login page redirected");
        };
        let Outcome::Page(page) = self.submit(&page, &[("login", person.upn)]) else {
            panic!("the device-login page redirected");
        };
        let Outcome::Page(page) = self.credentials(page, person, None) else {
            panic!("the device-login page redirected");
        };
        assert!(page.contains("value=\"approve\""), "{page}");
        let decision = if approve { "approve" } else { "decline" };
        match self.submit(&page, &[("decision", decision)]) {
            Outcome::Page(page) => page,
            Outcome::Redirect(to) => panic!("the device-login page redirected to {to}"),
        }
    }

    /// Types `person`'s current MFA code on `page` (after a wrong one).
    pub fn mfa_code(&self, page: &str, person: &Person<'_>) -> Outcome {
        let secret = person.totp_secret.expect("an MFA user");
        let code = sandbox::totp::current_code(secret).expect("a TOTP secret");
        self.submit(page, &[("otc", &code)])
    }

    fn credentials(&self, page: String, person: &Person<'_>, mfa_code: Option<&str>) -> Outcome {
        assert!(page.contains("name=\"passwd\""), "{page}");
        let after_password = self.submit(&page, &[("passwd", person.password)]);
        match (&after_password, person.totp_secret) {
            (Outcome::Page(page), Some(secret)) if page.contains("name=\"otc\"") => {
                let code = mfa_code
                    .map(str::to_owned)
                    .unwrap_or_else(|| sandbox::totp::current_code(secret).expect("a TOTP secret"));
                self.submit(page, &[("otc", &code)])
            }
            _ => after_password,
        }
    }

    fn get(&self, url: &str) -> String {
        self.http
            .get(url)
            .send()
            .and_then(reqwest::blocking::Response::text)
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
    }

    /// Posts the page's form with `fields` and its hidden `flow`.
    fn submit(&self, page: &str, fields: &[(&str, &str)]) -> Outcome {
        let action =
            attribute(page, "<form", "action").unwrap_or_else(|| panic!("no form in {page}"));
        let mut form: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if let Some(flow) = attribute(page, "name=\"flow\"", "value") {
            form.push(("flow".into(), flow));
        }
        let response = self
            .http
            .post(&action)
            .form(&form)
            .send()
            .unwrap_or_else(|e| panic!("POST {action}: {e}"));
        match response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
        {
            Some(location) => Outcome::Redirect(location.to_owned()),
            None => Outcome::Page(response.text().expect("a page")),
        }
    }
}

/// Delivers a redirect to exo's loopback listener, as the browser would; returns the status
/// and the page exo answered with.
pub fn deliver(location: &str) -> (u16, String) {
    let response = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .get(location)
        .send()
        .unwrap_or_else(|e| panic!("GET {location}: {e}"));
    let status = response.status().as_u16();
    (status, response.text().unwrap_or_default())
}

/// A `$BROWSER` for exo that opens nothing and records the URL it is given, for a test to
/// open; returns the script and the file it writes the URL into (replacing any earlier one).
pub fn recording_browser(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt as _;
    let script = dir.join("browser.sh");
    let opened = dir.join("opened-url");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" > '{}'\n",
            opened.display()
        ),
    )
    .expect("write the browser script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
        .expect("make it executable");
    let _ = std::fs::remove_file(&opened);
    (script, opened)
}

/// The URL a [`recording_browser`] was given, once exo has opened it (at most 20 s).
pub fn opened_url(opened: &std::path::Path) -> String {
    let started = std::time::Instant::now();
    loop {
        if let Ok(url) = std::fs::read_to_string(opened)
            && !url.trim().is_empty()
        {
            return url.trim().to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "exo opened no browser"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
