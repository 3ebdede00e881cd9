//! A minimal form-posting client with a cookie jar: enough to walk the dashboard's pages
//! without a browser (the real-browser walk is in `crate::browser`).

use std::collections::BTreeMap;

use keyward_core::api::CreateUser;
use keyward_core::model::{RoleKind, Scope, UserKind};
use keyward_core::{Clock as _, User};
use reqwest::redirect::Policy;

use crate::support::TestApp;

/// A client that keeps cookies and never follows redirects (so tests see each hop).
pub struct Jar {
    pub http: reqwest::Client,
    pub base: String,
    pub cookies: BTreeMap<String, String>,
}

/// One answer: status, `Location`, body.
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Page {
    /// The value of the first hidden `csrf` field.
    pub fn csrf(&self) -> String {
        hidden(&self.body, "csrf").unwrap_or_default()
    }
}

/// The value of the first `<input … name="{name}" value="…">` in `html`.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// The text of the element with `id`.
pub fn by_id(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let rest = &html[at..];
    let start = rest.find('>')? + 1;
    let end = rest[start..].find('<')? + start;
    Some(rest[start..end].trim().to_owned())
}

impl Jar {
    pub fn new(app: &TestApp) -> Self {
        Self::from(app, "127.0.0.1")
    }

    /// A client bound to `local` (127.0.0.x, ::1).
    pub fn from(app: &TestApp, local: &str) -> Self {
        let (_, base) = app.http_from(local);
        let addr: std::net::IpAddr = local.parse().unwrap();
        let http = reqwest::Client::builder()
            .redirect(Policy::none())
            .local_address(addr)
            .build()
            .unwrap();
        Self {
            http,
            base,
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn keep(&mut self, r: reqwest::Response) -> Page {
        for v in r.headers().get_all(reqwest::header::SET_COOKIE) {
            let v = v.to_str().unwrap();
            let kv = v.split(';').next().unwrap();
            let (k, val) = kv.split_once('=').unwrap();
            if v.contains("Max-Age=0") || val.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), val.to_owned());
            }
        }
        Page {
            status: r.status().as_u16(),
            location: r
                .headers()
                .get(reqwest::header::LOCATION)
                .map(|v| v.to_str().unwrap().to_owned()),
            headers: r.headers().clone(),
            body: r.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(r).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep(r).await
    }

    /// [`Jar::post`] with owned values.
    pub async fn post_owned(&mut self, path: &str, form: &[(&str, String)]) -> Page {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.post(path, &pairs).await
    }
}

/// A human role and a person holding it, with an e-mail address.
pub async fn person(app: &TestApp, email: &str, perms: &[&str]) -> User {
    let role = app
        .admin
        .create_role(&keyward_core::api::CreateRole {
            name: format!("people {email}"),
            description: String::new(),
            kind: RoleKind::Human,
            scope: Scope::Workspace,
            permissions: perms.iter().map(|s| (*s).to_owned()).collect(),
            ip_allowlist: None,
            rate_limit_per_minute: None,
            rate_limit_per: None,
        })
        .await
        .unwrap();
    app.admin
        .create_user(&CreateUser {
            kind: UserKind::Human,
            name: email.split('@').next().unwrap().into(),
            email: Some(email.into()),
            role_id: Some(role.id),
        })
        .await
        .unwrap()
}

/// The path of an invitation link.
pub async fn invitation_path(app: &TestApp, user: &User) -> String {
    let inv = app.admin.invite_user(user.id).await.unwrap();
    let at = inv.url.find("/ui/").unwrap();
    inv.url[at..].to_owned()
}

/// The current TOTP code of a base32 secret at the app's clock.
pub fn code(app: &TestApp, secret: &str) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.into()).to_bytes().unwrap();
    let t = totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        bytes,
        None,
        String::new(),
    );
    t.generate(app.clock.now().timestamp() as u64)
}

/// Accepts an invitation and enrols TOTP; returns the signed-in jar, the TOTP secret and the
/// recovery codes.
pub async fn onboard(app: &TestApp, user: &User, password: &str) -> (Jar, String, Vec<String>) {
    let mut jar = Jar::new(app);
    let path = invitation_path(app, user).await;
    let page = jar.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page.csrf();
    let done = jar
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("password", password),
                ("confirm", password),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/ui/account/2fa"));
    let enrol = jar.get("/ui/account/2fa").await;
    assert_eq!(enrol.status, 200, "{}", enrol.body);
    let secret = by_id(&enrol.body, "totp-secret").unwrap();
    let c = code(app, &secret);
    let codes = jar
        .post("/ui/account/2fa", &[("csrf", &enrol.csrf()), ("code", &c)])
        .await;
    assert_eq!(codes.status, 200, "{}", codes.body);
    let list: Vec<String> = codes
        .body
        .split("<li><code>")
        .skip(1)
        .map(|s| s[..s.find('<').unwrap()].to_owned())
        .collect();
    assert_eq!(list.len(), 10);
    (jar, secret, list)
}
